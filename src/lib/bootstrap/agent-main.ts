import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configFileLoader, nodeConfigFile, runOnNode, versionOfBundle } from './on-node.js';
import { errorMessage, isEdgectlError } from '../errors.js';
import { jsonLogger } from '../logger.js';

/**
 * The entry point of the bundled agent (scripts/build-agent.mjs → dist/agent/edgectl-agent.cjs),
 * what the systemd unit runs on a node: `node edgectl-agent.cjs --root ROOT [--nginx-binary B]`.
 * No oclif: one file plus the LevelDB addon beside it. The node side (agent.pid, reset-to-work,
 * waiting for a first release, FastCGI apps, reload on SIGHUP) is runOnNode's, shared with
 * `edgectl agent --root`; the config is `<root>/current/agent/agent.json`.
 */
export async function agentMain(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      root: { type: 'string' },
      'nginx-binary': { type: 'string', default: '/usr/sbin/nginx' },
      config: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
    strict: true,
  });
  const log = jsonLogger((line) => process.stderr.write(line), v['log-level'] as 'info');
  if (!v.root) throw new Error('--root ROOT is required (the node root: <root>/current, <root>/good)');
  const root = v.root.replace(/\/+$/, '');
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => stop());
  const config = v.config ?? nodeConfigFile(root);
  // Which build this is: the unit runs <root>/agent/current/edgectl-agent.cjs, resolved now (an
  // upgrade switches current before it restarts the service, so this is the version started).
  const version = versionOfBundle(process.argv[1]);
  // A packed node (docs/bootstrap.md) runs <root>/agent/first.json until its first release brings one.
  const first = `${root}/agent/first.json`;
  if (!v.config && !existsSync(config) && existsSync(first)) {
    const fromRelease = configFileLoader(config);
    const fromPack = configFileLoader(first);
    await runOnNode({ root, nginxBinary: v['nginx-binary'], log, stopped, load: () => (existsSync(config) ? fromRelease() : fromPack()), version });
    return;
  }
  await runOnNode({ root, nginxBinary: v['nginx-binary'], log, stopped, waitFor: config, load: configFileLoader(config), version });
}

/** Run as the bundle's main: errors are one line on stderr and exit 1 (systemd restarts it). */
export function runAgentMain(): void {
  agentMain(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`edgectl-agent: ${isEdgectlError(err) ? `${err.code}: ` : ''}${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
