import type { FastcgiInfo, SpoolInfo, TunnelInfo } from './types.js';

/**
 * Readers of what an agent says about itself: its /healthz and /status JSON (live) or its
 * heartbeat body (from the hub). Both come from a node, so both are hostile: each field is taken
 * only when it has the expected type and a sane size, and is null otherwise. Nothing here throws.
 */
const MAX_TEXT = 200;
const MAX_APPS = 64;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const WORD = /^[a-z][a-z-]{0,30}$/;
const HEX = /^[0-9a-f]{8,64}$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
export const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER ? v : null);
export const str = (v: unknown, re: RegExp): string | null => (typeof v === 'string' && re.test(v) ? v : null);
/** Free text (an error message): one line, control characters out, bounded. */
export const text = (v: unknown): string | null => (typeof v === 'string' ? v.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').slice(0, MAX_TEXT) : null);
export const isoTime = (v: unknown): string | null => (typeof v === 'string' && v.length <= 40 && /^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:?\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)) ? v : null);

export const word = (v: unknown) => str(v, WORD);
export const version = (v: unknown) => str(v, VERSION);
export const hexId = (v: unknown) => str(v, HEX);

/** JSON text → object, or undefined for anything else (not JSON, not an object). */
export function jsonObject(body: string): Obj | undefined {
  try {
    return obj(JSON.parse(body));
  } catch {
    return undefined;
  }
}

/**
 * FastCGI apps: a list of {app, state, processes, restarts} (the heartbeat's form) or an object
 * keyed by app (a /status may list them so). Absent: null.
 */
export function fastcgiOf(v: unknown): FastcgiInfo[] | null {
  const o = obj(v);
  if (!Array.isArray(v) && !o) return null;
  const entries: [unknown, Obj][] = Array.isArray(v) ? v.map((x) => [obj(x)?.app, obj(x) ?? {}]) : Object.entries(o!).map(([k, x]) => [k, obj(x) ?? {}]);
  const out: FastcgiInfo[] = [];
  for (const [app, x] of entries.slice(0, MAX_APPS)) {
    const name = str(app, NAME);
    if (!name) continue;
    const pids = Array.isArray(x.pids) ? x.pids.length : null;
    out.push({ app: name, state: word(x.state) ?? 'unknown', processes: num(x.processes) ?? pids, restarts: num(x.restarts) });
  }
  return out;
}

export function tunnelOf(v: unknown): TunnelInfo | null {
  const t = obj(v);
  if (!t) return null;
  const lastError = obj(t.lastError) ? text(obj(t.lastError)!.message) : text(t.lastError);
  return { state: word(t.state) ?? 'unknown', upSince: isoTime(t.upSince), reconnects: num(t.reconnects), lastError };
}

/** The spool part of /status (totals and per-queue oldest age, store quarantine list). */
export function spoolOfStatus(s: Obj): SpoolInfo | null {
  const totals = obj(s.totals);
  if (!totals) return null;
  const queues = Array.isArray(s.queues) ? s.queues.slice(0, 10_000) : [];
  let oldest: number | null = null;
  for (const q of queues) {
    const age = num(obj(q)?.oldestAgeSeconds);
    if (age !== null && (oldest === null || age > oldest)) oldest = age;
  }
  const store = obj(s.store);
  const quarantined = Array.isArray(store?.quarantined) ? store.quarantined.length : (num(store?.quarantined) ?? 0);
  return { depth: num(totals.depth) ?? 0, bytes: num(totals.bytes) ?? 0, oldestAgeSeconds: oldest, dropped: num(totals.dropped) ?? 0, expired: num(totals.expired) ?? 0, quarantined };
}

/** The agent's version in a /status: `version` or `agent.version` (neither is there before issue 14). */
export const versionOfStatus = (s: Obj): string | null => version(s.version) ?? version(obj(s.agent)?.version);

/** A release as an agent names it: its name, or the link target releases/NAME. */
export const releaseName = (v: unknown): string | null => {
  const m = typeof v === 'string' ? /^(?:releases\/)?([0-9a-f]{20})\/?$/.exec(v) : null;
  return m ? m[1] : null;
};
