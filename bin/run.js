#!/usr/bin/env node
// Entry point of the edgectl CLI (and of the on-node agent: `edgectl agent`).
import { Config, flush, handle, run, settings } from '@oclif/core';

// Always the compiled commands in dist/: with NODE_ENV=development or test (a developer's shell,
// vite-node, CI), oclif would otherwise look for TypeScript sources and load a transpiler first,
// about 0.4 s more per run (measured on `validate`).
settings.enableAutoTranspile = false;

const argv = process.argv.slice(2);
const config = await Config.load(import.meta.url);
try {
  await run(argv, config);
  await flush();
} catch (error) {
  // oclif's own exits (2 for usage, 127 for an unknown command) are mapped onto edgectl's table: src/cli/exit.ts.
  const { usageExit } = await import('../dist/cli/exit.js');
  const usage = usageExit(error, { argv, commandIDs: config.commandIDs, bin: config.bin, tty: Boolean(process.stdin.isTTY) });
  if (!usage) await handle(error);
  else {
    process.stderr.write(usage.text);
    process.exitCode = usage.exit;
  }
}
