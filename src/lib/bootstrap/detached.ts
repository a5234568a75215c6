import { randomBytes } from 'node:crypto';
import { EdgectlError, errorMessage, isEdgectlError } from '../errors.js';
import type { Logger } from '../logger.js';
import { runScript } from '../release/remote.js';
import type { Connector } from '../transport/connect.js';
import type { ExecResult, Transport } from '../transport/types.js';
import { GATE_SCRIPT, INSTALL_SCRIPT, parseLines, RESULT_DONE_SCRIPT, RESULT_SCRIPT } from './scripts.js';

/**
 * The install exec of bootstrap, and for a reverse node the wait for its detached gate
 * (docs/bootstrap.md, "Upgrades through the node's own tunnel"). A reverse node's tunnel is held
 * by the agent the gate restarts, so the exec that ran the install cannot see the restart's
 * outcome: the install script hands the gate to a transient systemd unit and exits; edgectl then
 * reconnects (through the tunnel once the agent holds it again), connection errors retried up to
 * a bound, and reads the outcome the gate wrote under <root>/run/upgrade-<id>/.
 */
export interface InstallRun {
  /** The install's result: for a detached gate, the install's output followed by the gate's, and the gate's exit code. */
  result: ExecResult;
  /** Where the node is reached now (a new connection after a detached gate). */
  transport: Transport;
  /** Closes what the wait opened (nothing when the gate ran in the install's own connection). */
  close(): Promise<void>;
}

export interface InstallOptions {
  node: string;
  root: string;
  /** argv after the script: root, version, unit path, runtime digest, runtime sha256. */
  args: string[];
  input: Buffer;
  /** tunnel: reverse: run the gate detached and come back for its outcome. */
  detach: boolean;
  /** A new connector for each reconnection (a connector's pool keeps a failed hop failed). */
  connector: () => Connector;
  /** How long to wait for the detached gate's outcome (default 150 s: the gate's two 15 s rounds, two restarts, the tunnel's 30 s backoff cap, with room). */
  waitMs?: number;
  pollMs?: number;
  /** Before the first try (default 1.5 s: the gate starts a second after the install's exit). */
  firstTryMs?: number;
  logger?: Logger;
}

const INSTALL_TIMEOUT_MS = 180_000;

export async function runInstall(t: Transport, o: InstallOptions): Promise<InstallRun> {
  const id = o.detach ? randomBytes(8).toString('hex') : '';
  let seen = '';
  const argv = ['bash', '-c', INSTALL_SCRIPT, 'edgectl', ...o.args, GATE_SCRIPT, id];
  let first: ExecResult;
  try {
    first = await t.exec(argv, { input: o.input, timeoutMs: INSTALL_TIMEOUT_MS, onStdout: (c) => (seen += c.toString('utf8')) });
  } catch (e) {
    // The detach was said, then the connection went before the exit status crossed it: the gate
    // runs all the same, so its outcome is what to wait for.
    if (!(id && isEdgectlError(e) && e.code === 'EDGECTL_TRANSPORT' && parseLines(seen).kv.get('result') === 'detached')) throw e;
    first = { code: 0, stdout: seen, stderr: '' };
  }
  const noop = { transport: t, close: async () => {} };
  if (!id || first.code !== 0 || parseLines(first.stdout).kv.get('result') !== 'detached') return { result: first, ...noop };
  // This connection rides the tunnel the gate is about to take down.
  await t.close().catch(() => {});
  o.logger?.info(`${o.node}: agent restart and health gate detached on the node (upgrade ${id}); waiting for the tunnel to come back`, {});
  const w = await awaitUpgrade(o, id);
  const result = { code: w.code, stdout: first.stdout + w.stdout, stderr: [first.stderr.trim(), w.stderr.trim()].filter(Boolean).join('\n') };
  return { result, transport: w.transport, close: w.close };
}

export interface Outcome extends ExecResult {
  transport: Transport;
  close(): Promise<void>;
}

/** The detached gate's outcome (RESULT_SCRIPT), over a new connection per failed try; then removed from the node. */
export async function awaitUpgrade(o: Pick<InstallOptions, 'node' | 'root' | 'connector' | 'waitMs' | 'pollMs' | 'firstTryMs' | 'logger'>, id: string): Promise<Outcome> {
  const waitMs = o.waitMs ?? 150_000;
  const pollMs = o.pollMs ?? 500;
  const deadline = Date.now() + waitMs;
  let conn: Connector | undefined;
  let t: Transport | undefined;
  let last = 'no answer yet';
  const drop = async () => {
    await t?.close().catch(() => {});
    await conn?.close().catch(() => {});
    t = conn = undefined;
  };
  // The gate starts a second after the install's exit: a first try sooner would ride the old tunnel into the restart.
  await sleep(Math.min(o.firstTryMs ?? 1500, waitMs));
  while (Date.now() < deadline) {
    try {
      conn ??= o.connector();
      t ??= await conn.open(o.node);
      const r = await runScript(t, RESULT_SCRIPT, [o.root, id], { timeoutMs: Math.max(1000, Math.min(10_000, deadline - Date.now())) });
      const kv = parseLines(r.stdout).kv;
      const state = kv.get('state');
      if (r.code !== 0 || state === undefined) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${o.node}: reading the outcome of agent upgrade ${id} failed (exit ${r.code})`, { detail: (r.stderr || r.stdout).trim().slice(-2000) });
      if (state === 'none') throw new EdgectlError('EDGECTL_BOOTSTRAP', `${o.node}: the node has no outcome of agent upgrade ${id} (${o.root}/run/upgrade-${id} is missing)`);
      if (state === 'done') {
        const code = Number(kv.get('code'));
        if (!Number.isInteger(code)) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${o.node}: agent upgrade ${id} wrote a malformed exit code`, { detail: String(kv.get('code')).slice(0, 100) });
        await runScript(t, RESULT_DONE_SCRIPT, [o.root, id], { timeoutMs: 10_000 }).catch(() => {});
        const transport = t;
        const c = conn;
        return { code, stdout: r.stdout, stderr: r.stderr, transport, close: async () => void (await transport.close().catch(() => {}), await c.close().catch(() => {})) };
      }
      last = 'the gate still runs on the node';
    } catch (e) {
      // Connection errors (the tunnel not back yet, the old one dying under the exec) are retried; anything else is the outcome.
      if (!isEdgectlError(e) || e.code !== 'EDGECTL_TRANSPORT') {
        await drop();
        throw e;
      }
      last = errorMessage(e);
      o.logger?.debug('agent upgrade: outcome not readable yet, retrying', { node: o.node, upgrade: id, error: last });
      await drop();
    }
    await sleep(Math.max(0, Math.min(pollMs, deadline - Date.now())));
  }
  await drop();
  throw new EdgectlError('EDGECTL_TRANSPORT', `${o.node}: agent upgrade ${id} did not report its outcome within ${Math.round(waitMs / 1000)} s (last: ${last})`, {
    hint: `The restart and health gate go on on the node without edgectl (rolled back there if the new agent fails). Once the node's tunnel is back, \`edgectl bootstrap ${o.node}\` reports what it runs; the gate's output is in ${o.root}/run/upgrade-${id}/ on the node.`,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
