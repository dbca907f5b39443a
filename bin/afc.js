#!/usr/bin/env node
import { runAfc } from '../dist/src/cli/afc.js';

// `afc --help | head`: a reader that went away is not an error worth a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runAfc(process.argv.slice(2), process.env, {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
// Exit explicitly: once a command is done, nothing it left behind (a pool's idle timer) should hold us.
process.exit(code);
