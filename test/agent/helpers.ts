import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { BIN, REPO } from '../helpers/paths.js';
import { cli } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { writeTestFleet } from '../apply/helpers.js';

export const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export interface AgentProc {
  name: string;
  args: string[];
  proc: ChildProcess;
  port: number;
  adminPort: number;
  /** The address it listens on (device API, and the admin API unless adminHost). */
  host: string;
  adminHost: string;
  /** Where the agent keeps its admin token (its data dir's admin-token, or --admin-token-file). */
  tokenFile: string;
  log: string[];
}

/** The admin token file an agent started with these arguments uses. */
function tokenFileOf(args: string[]): string {
  const flag = (name: string) => { const i = args.indexOf(name); return i === -1 ? undefined : args[i + 1]; };
  const explicit = flag('--admin-token-file');
  if (explicit) return explicit;
  const data = flag('--data') ?? (JSON.parse(readFileSync(flag('--config')!, 'utf8')) as { dataDir: string }).dataDir;
  return path.join(data, 'admin-token');
}

const running = new Set<AgentProc>();

/** The deployment's recommended V8 setting (docs/httpq.md): a small young generation keeps RSS low. */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=4';

/** Starts `node bin/run.js agent ...` as its own process and waits for /healthz to answer. */
/** opts.host: where it listens (and its admin API, unless opts.adminHost: the admin API is loopback only). */
export async function startAgent(name: string, port: number, adminPort: number, args: string[], opts: { waitHealthy?: boolean; host?: string; adminHost?: string } = {}): Promise<AgentProc> {
  const host = opts.host ?? '127.0.0.1';
  const adminHost = opts.adminHost ?? host;
  const full = [BIN, 'agent', '--node', name, '--listen', `${host}:${port}`, '--admin', `${adminHost}:${adminPort}`, ...args];
  const proc = spawn(process.execPath, full, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', NODE_OPTIONS: AGENT_NODE_OPTIONS } });
  const a: AgentProc = { name, args, proc, port, adminPort, host, adminHost, tokenFile: tokenFileOf(args), log: [] };
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { a.log.push(d); if (a.log.length > 2000) a.log.splice(0, 1000); });
  running.add(a);
  proc.once('exit', () => running.delete(a));
  if (opts.waitHealthy !== false) {
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`${name} exited with status ${proc.exitCode}: ${a.log.join('')}`);
      return (await fetch(`http://${adminHost}:${adminPort}/healthz`).catch(() => undefined))?.status !== undefined;
    }, 90_000, `${name} to start\n${a.log.join('')}`);
  }
  return a;
}

export function restart(a: AgentProc): Promise<AgentProc> {
  return startAgent(a.name, a.port, a.adminPort, a.args, { host: a.host, adminHost: a.adminHost });
}

export async function kill9(a: AgentProc): Promise<void> {
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  const gone = new Promise((r) => a.proc.once('exit', r));
  a.proc.kill('SIGKILL');
  await gone;
}

export async function stopAgent(a: AgentProc): Promise<number | null> {
  if (a.proc.exitCode !== null || a.proc.signalCode !== null) return a.proc.exitCode;
  const gone = new Promise<number | null>((r) => a.proc.once('exit', (code) => r(code)));
  a.proc.kill('SIGTERM');
  const t = setTimeout(() => a.proc.kill('SIGKILL'), 10_000);
  const code = await gone;
  clearTimeout(t);
  return code;
}

/** For afterAll: every agent process this file started, killed even when a test failed. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((a) => kill9(a)));
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A request to the agent's admin API with its admin token. */
export function admin(a: AgentProc, pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
  const token = readFileSync(a.tokenFile, 'utf8').trim();
  return fetch(`http://${a.adminHost}:${a.adminPort}${pathAndQuery}`, { ...init, headers: { ...init.headers as Record<string, string>, authorization: `Bearer ${token}` } });
}

export async function status(a: AgentProc): Promise<any> {
  const r = await admin(a, '/status');
  return r.json();
}

/**
 * A node's forwarding credential for tests: the secret in a file (for --credential-file) and the
 * --accept-forward value its parent hop takes it with (the nodes behind it after the hash).
 */
export function credential(dir: string, node: string): { file: string; secret: string; sha256: string; accept: (...behind: string[]) => string } {
  const secret = `credential-of-${node}`;
  const file = path.join(dir, `${node}.credential`);
  writeFileSync(file, secret, { mode: 0o600 });
  const sha256 = sha(secret);
  return { file, secret, sha256, accept: (...behind) => `${node}:${sha256}${behind.length ? `:${behind.join(',')}` : ''}` };
}

export type Chain = Record<'edge' | 'relay' | 'hub', AgentProc>;

/**
 * edge -> relay -> hub, each a real agent process (device API on P[k], its admin API on the next
 * port, data under dir/<k>), each hop accepting only the one below it by its credential, the edge
 * taking device token "tok" for tenant acme. `afterHub` runs once the hub is up (its sink ready).
 */
export async function startChain(dir: string, P: Record<keyof Chain, number>, o: { hubSink: string; common: string[]; afterHub?: () => Promise<void> }): Promise<Chain> {
  const edgeCred = credential(dir, 'edge-c');
  const relayCred = credential(dir, 'relay-c');
  const hub = await startAgent('hub-c', P.hub, P.hub + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', o.hubSink, '--accept-forward', relayCred.accept('edge-c'), ...o.common]);
  await o.afterHub?.();
  const relay = await startAgent('relay-c', P.relay, P.relay + 1, ['--role', 'relay', '--data', path.join(dir, 'relay'), '--upstream', `http://127.0.0.1:${P.hub}/v1/forward`,
    '--credential-file', relayCred.file, '--accept-forward', edgeCred.accept(), ...o.common]);
  const edge = await startAgent('edge-c', P.edge, P.edge + 1, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${P.relay}/v1/forward`,
    '--credential-file', edgeCred.file, '--token', `acme:${sha('tok')}`, ...o.common]);
  return { edge, relay, hub };
}

/** Messages waiting in the spool, the agent's own heartbeats excluded. */
export async function depth(a: AgentProc): Promise<number> {
  const s = await status(a);
  return (s.queues as { tenant: string; depth: number }[]).filter((q) => q.tenant !== '_agent').reduce((n, q) => n + q.depth, 0);
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

export async function post(port: number, topic: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/q/${topic}`, { method: 'POST', body, headers });
  const text = await r.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, json, headers: r.headers };
}

/**
 * The value f gives once it gives one (truthy), asked every 100 ms; a throw is a "not yet". Past
 * `ms`, fails naming what it waited for, the last error, and the tail of the agent's log.
 */
export async function untilValue<T>(what: string, f: () => Promise<T | undefined | false>, agentLog: () => string, ms = 15_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what} (${String(last ?? '')}); agent log:\n${agentLog().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One edge node `e1` applied with `edgectl apply --local` under dir/nodes (real nginx on `addr`,
 * the rendered agent.json and JSON access log), serving two tenants' static apps: acme's
 * www.acme.test and globex's shop.globex.test. The metering tests' node.
 */
export async function appliedMeteringNode(dir: string, addr: string): Promise<{ ports: LocalPortBlock; root: string }> {
  const ports = await localPortBlock(['e1'], addr);
  const fleet = path.join(dir, 'fleet');
  const root = path.join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: ['e1'], apps: [
    { name: 'web', tenant: 'acme', domain: 'www.acme.test', nodes: ['e1'], html: '<h1>acme</h1>\n' },
    { name: 'shop', tenant: 'globex', domain: 'shop.globex.test', nodes: ['e1'], html: '<h1>globex shop</h1>\n' },
  ] });
  writeFileSync(path.join(fleet, 'tenants.yaml'), ['acme', 'globex'].map((t) => `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: ${t} }\nspec: {}\n`).join('---\n'));
  const r = await cli(['apply', '--fleet', fleet, '--local', root, ...ports.flags, '--local-address', addr, '--yes']);
  expect(r.code, r.stderr).toBe(0);
  return { ports, root };
}
