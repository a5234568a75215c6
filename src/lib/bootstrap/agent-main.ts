import { access } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { resolveAgentConfig } from '../agent/from-flags.js';
import { serveAgent } from '../agent/serve.js';
import { errorMessage, isEdgectlError } from '../errors.js';
import { jsonLogger } from '../logger.js';
import { resetAtBoot } from '../reset/at-boot.js';

/**
 * The entry point of the bundled agent (scripts/build-agent.mjs → dist/agent/edgectl-agent.cjs),
 * what the systemd unit runs on a node: `node edgectl-agent.cjs --root ROOT [--nginx-binary B]`.
 * No oclif: one file plus the LevelDB addon beside it. At start, reset-to-work (current back to
 * good, nginx started from it), then the agent from `<root>/current/agent/agent.json`. A node that
 * has no release yet waits for one (polling), so the service stays up instead of restart-looping.
 */
const POLL_MS = 5000;

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
  let stopping = false;
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => ((stopping = true), stop()));

  // A failure is logged and retried with a back-off; it never stops the agent (HTTPQ goes on).
  await resetAtBoot(root, { nginxBinary: v['nginx-binary'], logger: log, stopped });
  const config = v.config ?? `${root}/current/agent/agent.json`;
  let said = false;
  while (!(await exists(config))) {
    if (!said) log.info('no release with an agent.json yet; waiting for the first apply', { config });
    said = true;
    await Promise.race([stopped, new Promise((res) => setTimeout(res, POLL_MS))]);
    if (stopping) return;
  }
  await serveAgent(await resolveAgentConfig({ config }), log, stopped);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
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
