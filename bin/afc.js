#!/usr/bin/env node
import { runAfc } from '../dist/src/cli/afc.js';

process.exitCode = await runAfc(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
