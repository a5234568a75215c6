import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { EdgectlError } from '../errors.js';
import type { Transport } from '../transport/types.js';
import { layout } from './layout.js';
import { BREAK_LOCK_SCRIPT, LOCK_SCRIPT, RENEW_LOCK_SCRIPT, runScript, UNLOCK_SCRIPT } from './remote.js';

export interface LockHolder {
  holder: string;
  pid: number;
  host: string;
  op: string;
  since: string;
  expires: string;
  id: string;
}

/** Short, and renewed while the holder works: a holder that died frees the node within minutes. */
export const DEFAULT_LOCK_TTL_MS = 5 * 60_000;
export const LOCK_RENEW_MS = 60_000;

export function makeHolder(op: string, ttlMs = DEFAULT_LOCK_TTL_MS, now = Date.now()): LockHolder {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers): keep "unknown" */
  }
  return {
    holder: `${user}@${hostname()}`,
    pid: process.pid,
    host: hostname(),
    op,
    since: new Date(now).toISOString(),
    expires: new Date(now + ttlMs).toISOString(),
    id: randomBytes(6).toString('hex'),
  };
}

export function describeHolder(raw: string): string {
  try {
    const h = JSON.parse(raw) as LockHolder;
    return `${h.holder} (pid ${h.pid}, ${h.op}, since ${h.since}, expires ${h.expires})`;
  } catch {
    return raw.slice(0, 200) || 'an unknown holder';
  }
}

/**
 * The node's apply lock: a directory made with mkdir (atomic on every filesystem) holding the
 * holder's identity and expiry. A second apply is refused naming the holder; an expired lock
 * (its holder died) is broken, but only if it still has the holder we judged expired.
 */
export async function acquireLock(t: Transport, root: string, holder: LockHolder, now = Date.now()): Promise<string> {
  const l = layout(root);
  const line = JSON.stringify(holder);
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await runScript(t, LOCK_SCRIPT, [l.root, line], { timeoutMs: 30_000 });
    if (r.code === 0) return line;
    if (r.code !== 3) throw new EdgectlError('EDGECTL_TRANSPORT', `${t.node}: cannot take the lock in ${l.lock}: ${(r.stderr || r.stdout).trim()}`);
    const current = r.stdout.trim();
    if (attempt === 0 && isExpired(current, now)) {
      await breakLock(t, root, current);
      continue;
    }
    throw new EdgectlError('EDGECTL_LOCKED', `${t.node} is locked by ${describeHolder(current)}`);
  }
  throw new EdgectlError('EDGECTL_LOCKED', `${t.node}: another process took the lock while an expired one was being broken`);
}

/** Breaks the lock, only if it still has the holder line we judged expired. */
export async function breakLock(t: Transport, root: string, holderLine: string): Promise<void> {
  await runScript(t, BREAK_LOCK_SCRIPT, [layout(root).root, holderLine], { timeoutMs: 30_000 });
}

export async function releaseLock(t: Transport, root: string, line: string): Promise<void> {
  await runScript(t, UNLOCK_SCRIPT, [layout(root).root, idOf(line)], { timeoutMs: 30_000 });
}

/** Renews the lock's expiry every `everyMs` until stopped (a long upload must not lose its lock). */
export function keepLock(t: Transport, root: string, line: string, opts: { everyMs?: number; ttlMs?: number } = {}): { stop(): void } {
  const h = JSON.parse(line) as LockHolder;
  const timer = setInterval(() => {
    const renewed = JSON.stringify({ ...h, expires: new Date(Date.now() + (opts.ttlMs ?? DEFAULT_LOCK_TTL_MS)).toISOString() });
    runScript(t, RENEW_LOCK_SCRIPT, [layout(root).root, idOf(line), renewed], { timeoutMs: 30_000 }).catch(() => {});
  }, opts.everyMs ?? LOCK_RENEW_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The needle the node-side scripts look for in the holder file. */
function idOf(line: string): string {
  const id = (JSON.parse(line) as LockHolder).id;
  if (!/^[a-z0-9]{1,20}$/.test(id)) throw new EdgectlError('EDGECTL_INTERNAL', 'lock holder without an id');
  return `"id":"${id}"`;
}

/**
 * Stale: past its expiry, or taken from this very machine by a process that no longer exists
 * (an apply killed, or whose connection died before it could unlock): no need to wait then.
 */
export function isExpired(raw: string, now: number): boolean {
  if (!raw) return false; // being written right now: not ours to break
  try {
    const h = JSON.parse(raw) as LockHolder;
    const exp = Date.parse(h.expires);
    if (Number.isFinite(exp) && exp < now) return true;
    return h.host === hostname() && h.pid !== process.pid && Number.isInteger(h.pid) && h.pid > 0 && !alive(h.pid);
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
