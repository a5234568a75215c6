import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { access, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import type { Logger } from '../logger.js';
import { resetAtBoot } from '../reset/at-boot.js';
import { resolveAgentConfig, type AgentFlags } from '../agent/from-flags.js';
import { serveNode, type LoadedConfig } from '../agent/serve.js';

/**
 * The agent as a node's service, shared by the bundled entry (src/lib/bootstrap/agent-main.ts)
 * and `edgectl agent --root`: writes <root>/run/agent.pid (apply sends SIGHUP to it after a
 * switch), runs reset-to-work, waits for a first release when there is none yet, then serves
 * with the FastCGI apps supervised, reloading on SIGHUP. The SIGHUP handler is installed first:
 * a HUP's default action would end the process, and apply may send one at any moment.
 */
export interface OnNodeOptions {
  root: string;
  nginxBinary: string;
  log: Logger;
  stopped: Promise<void>;
  load: () => Promise<LoadedConfig>;
  /** agent.json to wait for before serving (the bundled agent); none when flags alone configure the agent. */
  waitFor?: string;
  /** First retry of a failed reset-to-work. */
  retryFirstMs?: number;
  /** The agent build (bootstrap's version digest, from the directory the bundle runs from), for /healthz and agent.state. */
  version?: string | null;
}

const POLL_MS = 5000;

export const agentPidFile = (root: string) => `${root.replace(/\/+$/, '')}/run/agent.pid`;

/**
 * `<root>/run/agent.state`: one line "PID VERSION STATE", STATE `waiting` (reset-to-work done, no
 * release with an agent.json yet) or `serving` (the HTTPQ agent listens). What an agent upgrade
 * checks (scripts.ts) when the node has no release, so no /healthz to ask. VERSION is `-` when
 * the agent does not run from a bootstrap version directory.
 */
export const agentStateFile = (root: string) => `${root.replace(/\/+$/, '')}/run/agent.state`;

/** The version directory a bundle runs from: `<root>/agent/<version>/edgectl-agent.cjs` (links resolved), else null. */
export function versionOfBundle(path: string | undefined): string | null {
  if (!path) return null;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null;
  }
  const m = /\/agent\/([0-9a-f]{20})\/[^/]+$/.exec(real);
  return m ? m[1] : null;
}

/** The agent.json a node runs from: the current release's. */
export const nodeConfigFile = (root: string) => `${root.replace(/\/+$/, '')}/current/agent/agent.json`;

/** Reads agent.json once: its sha256 is that of exactly the bytes parsed. */
export function configFileLoader(path: string, flags: AgentFlags = {}): () => Promise<LoadedConfig> {
  return async () => {
    const bytes = await readFile(path).catch(() => undefined);
    const config = await resolveAgentConfig({ ...flags, config: path, ...(bytes ? { configText: bytes.toString('utf8') } : {}) });
    return { config, digest: bytes ? createHash('sha256').update(bytes).digest('hex') : null };
  };
}

export async function runOnNode(o: OnNodeOptions): Promise<void> {
  const root = o.root.replace(/\/+$/, '');
  const { log } = o;
  const listeners: (() => void)[] = [];
  let wake: () => void = () => {};
  // A HUP while the agent starts may come after it read its config: replayed once it serves.
  let pending = false;
  const onHup = () => {
    wake();
    if (listeners.length === 0) pending = true;
    for (const l of listeners) l();
  };
  process.on('SIGHUP', onHup);
  let stopping = false;
  void o.stopped.then(() => (stopping = true));
  const pidFile = agentPidFile(root);
  const stateFile = agentStateFile(root);
  const state = (s: 'waiting' | 'serving') => writeLine(stateFile, `${process.pid} ${o.version ?? '-'} ${s}`).catch((err) => log.warn('cannot write the agent state file', { file: stateFile, error: String(err) }));
  await writeLine(pidFile, String(process.pid));
  try {
    await resetAtBoot(root, { nginxBinary: o.nginxBinary, logger: log, stopped: o.stopped, retryFirstMs: o.retryFirstMs });
    if (o.waitFor && !(await exists(o.waitFor))) await state('waiting');
    if (o.waitFor) {
      let said = false;
      while (!(await exists(o.waitFor))) {
        if (!said) log.info('no release with an agent.json yet; waiting for the first apply', { config: o.waitFor });
        said = true;
        await Promise.race([o.stopped, new Promise<void>((res) => ((wake = res), setTimeout(res, POLL_MS)))]);
        if (stopping) return;
      }
    }
    const onReload = (l: () => void) => {
      listeners.push(l);
      if (!pending) return;
      pending = false;
      l();
    };
    await serveNode({ log, stopped: o.stopped, load: o.load, root, onReload, version: o.version, onListening: () => state('serving') });
  } finally {
    process.off('SIGHUP', onHup);
    await removeOwn(stateFile);
    await removeOwn(pidFile);
  }
}

async function writeLine(path: string, line: string): Promise<void> {
  await mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
  await writeFile(`${path}.tmp`, `${line}\n`, { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}

/** Only our own (the file starts with our pid): a newer agent may already have written there. */
async function removeOwn(path: string): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => '');
  if (text.trim().split(' ')[0] === String(process.pid)) await unlink(path).catch(() => {});
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
