#!/usr/bin/env node
/**
 * The agent as one file for nodes (issue 13): esbuild bundles src/lib/bootstrap/agent-main.ts and
 * everything it imports (no oclif) into dist/agent/edgectl-agent.cjs, and copies classic-level's
 * prebuilt LevelDB addons for Linux beside it (prebuilds/linux-<arch>/, glibc and musl builds),
 * where node-gyp-build looks for them next to the bundle. `edgectl bootstrap` ships this folder.
 * CommonJS on purpose: node-gyp-build resolves the addon from the bundle's __dirname.
 */
import { build } from 'esbuild';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'dist', 'agent');
const require = createRequire(join(repo, 'package.json'));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await writeFile(join(out, 'entry.ts'), "import { runAgentMain } from '../../src/lib/bootstrap/agent-main.js';\nrunAgentMain();\n");
await build({
  entryPoints: [join(out, 'entry.ts')],
  outfile: join(out, 'edgectl-agent.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
  // Optional native speedups of ssh2 and nats: the agent's tunnel (ssh2) runs without them.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
});
await rm(join(out, 'entry.ts'));
const prebuilds = join(dirname(require.resolve('classic-level/package.json')), 'prebuilds');
for (const dir of await readdir(prebuilds)) {
  if (!dir.startsWith('linux-')) continue;
  await cp(join(prebuilds, dir), join(out, 'prebuilds', dir), { recursive: true });
}
process.stdout.write(`agent bundle: ${join(out, 'edgectl-agent.cjs')}\n`);
