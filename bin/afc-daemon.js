#!/usr/bin/env node
import { runAfcDaemon } from '../dist/src/cli/afc-daemon.js';

// `afc --help | head`: a reader that went away is not an error worth a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const { exited } = runAfcDaemon(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
// Exit explicitly: a stopped daemon has nothing left to do, even if a library left a timer behind.
process.exit(await exited);
