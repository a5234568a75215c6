import type { Heartbeat, UsageMinute } from '../../telemetry.js';
import { RE } from '../../../fleet/values.js';

/**
 * The agents' own bodies as the sink's tables take them, checked first: they come from other
 * nodes through neighbours, so anything may be in them. A body that does not parse is not an
 * error of the batch (that would stop the queue behind it): the caller stores it as a plain
 * message with the reason, and counts it.
 */
export type Parsed<T> = { ok: T } | { problem: string };

/** A heartbeat as stored: its node, its time (normalised ISO) and the body as jsonb text. */
export interface HeartbeatRow { node: string; time: string; json: string }

const MAX_BODY = 256 << 10;
const MAX_DEPTH = 32;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
/** PostgreSQL's timestamptz goes further, but no agent's clock says anything outside these. */
const MIN_MS = Date.UTC(2000, 0, 1);
const MAX_MS = Date.UTC(10000, 0, 1) - 1;
const APP = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A body that parses as JSON and that jsonb takes as it is (no \u0000, no lone surrogate, bounded). */
function parseJson(body: Buffer): Parsed<Record<string, unknown>> {
  if (body.length > MAX_BODY) return { problem: `body is ${body.length} bytes (at most ${MAX_BODY})` };
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return { problem: 'body is not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: 'body is not a JSON object' };
  const bad = jsonbProblem(v, 0);
  return bad ? { problem: bad } : { ok: v as Record<string, unknown> };
}

/** jsonb rejects what JSON.parse accepts in a few places; one such body would fail its whole batch forever. */
function jsonbProblem(v: unknown, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return `body nests deeper than ${MAX_DEPTH}`;
  if (typeof v === 'string') return textOk(v) ? undefined : 'body holds a NUL or a lone surrogate';
  if (typeof v !== 'object' || v === null) return undefined;
  for (const [k, x] of Object.entries(v)) {
    if (!textOk(k)) return 'body holds a NUL or a lone surrogate';
    const p = jsonbProblem(x, depth + 1);
    if (p) return p;
  }
  return undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const textOk = (s: string) => !s.includes('\u0000') && !LONE_SURROGATE.test(s);

function timeOf(v: unknown, field: string): Parsed<string> {
  const ms = typeof v === 'string' && ISO.test(v) ? Date.parse(v) : NaN;
  if (!(ms >= MIN_MS && ms <= MAX_MS)) return { problem: `${field} is not an ISO time between 2000 and 9999` };
  return { ok: new Date(ms).toISOString() };
}

const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A Heartbeat body sent by `origin` (the node its message id names, which the hops authenticated):
 * a body naming another node is refused, so no node can write another's heartbeat row.
 */
export function parseHeartbeat(body: Buffer, origin: string): Parsed<HeartbeatRow> {
  const j = parseJson(body);
  if ('problem' in j) return j;
  const b = j.ok as Partial<Record<keyof Heartbeat, unknown>>;
  if (b.node !== origin) return { problem: `heartbeat names node ${JSON.stringify(String(b.node).slice(0, 64))}, but its message comes from ${origin}` };
  const time = timeOf(b.time, 'time');
  if ('problem' in time) return time;
  if (typeof b.role !== 'string' || typeof b.store !== 'string') return { problem: 'heartbeat needs role and store (strings)' };
  for (const f of ['depth', 'bytes', 'quarantined'] as const) if (!count(b[f])) return { problem: `heartbeat ${f} is not a non-negative integer` };
  if (b.lastForward !== null && typeof b.lastForward !== 'string') return { problem: 'heartbeat lastForward is neither a string nor null' };
  for (const f of ['agent', 'release', 'nginx', 'spool', 'tunnel', 'disk'] as const) {
    if (b[f] !== undefined && !isObj(b[f])) return { problem: `heartbeat ${f} is not an object` };
  }
  if (b.fastcgi !== undefined && !Array.isArray(b.fastcgi)) return { problem: 'heartbeat fastcgi is not a list' };
  if (b.load !== undefined && !(Array.isArray(b.load) && b.load.length === 3 && b.load.every(num))) return { problem: 'heartbeat load is not three numbers' };
  return { ok: { node: origin, time: time.ok, json: JSON.stringify(b) } };
}

/** A UsageMinute body sent by `origin`, with its minute normalised; refused when it names another node. */
export function parseUsage(body: Buffer, origin: string): Parsed<UsageMinute> {
  const j = parseJson(body);
  if ('problem' in j) return j;
  const u = j.ok as Partial<Record<keyof UsageMinute, unknown>>;
  if (u.v !== 1) return { problem: `usage body version ${String(JSON.stringify(u.v)).slice(0, 20)} is not 1` };
  if (u.node !== origin) return { problem: `usage names node ${JSON.stringify(String(u.node).slice(0, 64))}, but its message comes from ${origin}` };
  if (u.source !== 'nginx' && u.source !== 'httpq') return { problem: 'usage source is neither nginx nor httpq' };
  if (typeof u.tenant !== 'string' || !(RE.dnsLabel.test(u.tenant) || u.tenant === '_agent')) return { problem: 'usage tenant is not a tenant name' };
  if (typeof u.app !== 'string' || !APP.test(u.app)) return { problem: 'usage app is not an app or topic name' };
  const minute = timeOf(u.minute, 'minute');
  if ('problem' in minute) return minute;
  if (Date.parse(minute.ok) % 60_000 !== 0) return { problem: 'usage minute does not start a minute' };
  for (const f of ['requests', 'bytesIn', 'bytesOut'] as const) if (!count(u[f])) return { problem: `usage ${f} is not a non-negative integer` };
  const s = u.status;
  if (!isObj(s) || !(['1xx', '2xx', '3xx', '4xx', '5xx'] as const).every((k) => count(s[k]))) return { problem: 'usage status needs 1xx..5xx counts' };
  const c = u.cache;
  if (!isObj(c) || !count(c.hit) || !count(c.miss)) return { problem: 'usage cache needs hit and miss counts' };
  const up = u.upstreamMs;
  if (up !== null && !(isObj(up) && num(up.p50) && num(up.p90) && num(up.p99) && num(up.max))) return { problem: 'usage upstreamMs is neither null nor p50/p90/p99/max' };
  return { ok: { ...(u as UsageMinute), node: origin, minute: minute.ok } };
}
