import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export interface AgentProc {
  name: string;
  args: string[];
  proc: ChildProcess;
  port: number;
  adminPort: number;
  log: string[];
}

const running = new Set<AgentProc>();

/** The deployment's recommended V8 setting (docs/httpq.md): a small young generation keeps RSS low. */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=4';

/** Starts `node bin/run.js agent ...` as its own process and waits for /healthz to answer. */
export async function startAgent(name: string, port: number, adminPort: number, args: string[], opts: { waitHealthy?: boolean } = {}): Promise<AgentProc> {
  const full = ['bin/run.js', 'agent', '--node', name, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`, ...args];
  const proc = spawn(process.execPath, full, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', NODE_OPTIONS: AGENT_NODE_OPTIONS } });
  const a: AgentProc = { name, args, proc, port, adminPort, log: [] };
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { a.log.push(d); if (a.log.length > 2000) a.log.splice(0, 1000); });
  running.add(a);
  proc.once('exit', () => running.delete(a));
  if (opts.waitHealthy !== false) await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/healthz`).catch(() => undefined))?.status !== undefined, 90_000, `${name} to start\n${a.log.join('')}`);
  return a;
}

export function restart(a: AgentProc): Promise<AgentProc> {
  const base = a.args;
  return startAgent(a.name, a.port, a.adminPort, base);
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

export async function status(a: AgentProc): Promise<any> {
  const r = await fetch(`http://127.0.0.1:${a.adminPort}/status`);
  return r.json();
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
