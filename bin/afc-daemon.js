#!/usr/bin/env node
import { runAfcDaemon } from '../dist/src/cli/afc-daemon.js';

const { exited } = runAfcDaemon(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
// Exit explicitly: a stopped daemon has nothing left to do, even if a library left a timer behind.
process.exit(await exited);
