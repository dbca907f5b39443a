// The package's version, for --version: from the package.json beside migrations/ (the package root, found
// the same way whether this runs from src/ in tests or from dist/src/ when installed).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { migrationsDir } from './sql/templates.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(dirname(migrationsDir()), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}
