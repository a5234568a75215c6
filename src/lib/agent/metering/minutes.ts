import type { StatusClasses, UsageMinute } from '../telemetry.js';

export const MINUTE_MS = 60_000;
export const minuteOf = (ms: number) => Math.floor(ms / MINUTE_MS) * MINUTE_MS;

/** One open minute of one tenant's app (or topic): plain JSON, kept in the store with the offset. */
export interface MinuteAgg {
  tenant: string;
  app: string;
  minute: number;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  /** 1xx..5xx */
  status: [number, number, number, number, number];
  hit: number;
  miss: number;
  /** Upstream times as a histogram (bucket → count, see bucketOf), so the state stays small at any rate. */
  up: Record<string, number>;
  upMax: number;
}

/**
 * The minutes being counted. `watermark`: every minute before it is closed (shipped); a line
 * that comes later for a closed minute (a slow worker's, across the boundary) counts in the
 * first open one, so totals stay exact and no minute is ever shipped twice.
 */
export interface Minutes {
  watermark: number;
  /** The latest line time seen: a minute closes once lines from past its end + grace appear. */
  latest: number;
  open: Record<string, MinuteAgg>;
}

export const emptyMinutes = (): Minutes => ({ watermark: 0, latest: 0, open: {} });

export interface Sample {
  tenant: string;
  app: string;
  time: number;
  requests?: number;
  status?: number;
  bytesIn: number;
  bytesOut: number;
  cache?: 'hit' | 'miss' | null;
  upstreamMs?: number | null;
}

export function addSample(m: Minutes, s: Sample): void {
  const minute = Math.max(minuteOf(s.time), m.watermark);
  if (s.time > m.latest) m.latest = s.time;
  const key = `${minute}|${s.tenant}|${s.app}`;
  let a = m.open[key];
  if (!a) m.open[key] = a = { tenant: s.tenant, app: s.app, minute, requests: 0, bytesIn: 0, bytesOut: 0, status: [0, 0, 0, 0, 0], hit: 0, miss: 0, up: {}, upMax: -1 };
  const n = s.requests ?? 1;
  a.requests += n;
  a.bytesIn += s.bytesIn;
  a.bytesOut += s.bytesOut;
  if (s.status !== undefined) {
    const cls = Math.floor(s.status / 100);
    if (cls >= 1 && cls <= 5) a.status[cls - 1] += n;
  }
  if (s.cache === 'hit') a.hit += n;
  else if (s.cache === 'miss') a.miss += n;
  if (s.upstreamMs !== undefined && s.upstreamMs !== null) {
    const b = bucketOf(s.upstreamMs);
    a.up[b] = (a.up[b] ?? 0) + 1;
    if (s.upstreamMs > a.upMax) a.upMax = s.upstreamMs;
  }
}

const newAgg = (tenant: string, app: string, minute: number): MinuteAgg =>
  ({ tenant, app, minute, requests: 0, bytesIn: 0, bytesOut: 0, status: [0, 0, 0, 0, 0], hit: 0, miss: 0, up: {}, upMax: -1 });

interface Slot { app: string; of?: Minutes; minute: number; agg?: MinuteAgg }

/**
 * addSample for nginx's lines, one per request, as the agent reads them: the same counts as
 * addSample(m, { ...l, app: `${l.tenant}.${l.app}` }), without the object, the app's id and the
 * key string that would take per line. It remembers, per tenant and app (a few: the strings are
 * the parser's own), the minute it counted into last and in which Minutes; the aggregate it keeps
 * stays in `m.open` until closeMinutes, which only takes minutes before the watermark, and every
 * line counts at or after it.
 */
export class LineCounter {
  private readonly slots = new Map<string, Map<string, Slot>>();
  private size = 0;

  add(m: Minutes, l: { tenant: string; app: string; time: number; status: number; bytesIn: number; bytesOut: number; cache: 'hit' | 'miss' | null; upstreamMs: number | null }): void {
    let apps = this.slots.get(l.tenant);
    if (!apps) {
      if (this.size >= 4096) { this.slots.clear(); this.size = 0; }
      this.slots.set(l.tenant, (apps = new Map()));
    }
    let s = apps.get(l.app);
    if (!s) {
      apps.set(l.app, (s = { app: `${l.tenant}.${l.app}`, minute: NaN }));
      this.size++;
    }
    const t = l.time;
    const mo = Math.floor(t / MINUTE_MS) * MINUTE_MS;
    const minute = mo > m.watermark ? mo : m.watermark;
    if (t > m.latest) m.latest = t;
    let a = s.agg;
    if (s.of !== m || s.minute !== minute || !a) {
      const key = `${minute}|${l.tenant}|${s.app}`;
      a = m.open[key] ??= newAgg(l.tenant, s.app, minute);
      s.of = m;
      s.minute = minute;
      s.agg = a;
    }
    a.requests++;
    a.bytesIn += l.bytesIn;
    a.bytesOut += l.bytesOut;
    const cls = Math.floor(l.status / 100);
    if (cls >= 1 && cls <= 5) a.status[cls - 1]++;
    if (l.cache === 'hit') a.hit++;
    else if (l.cache === 'miss') a.miss++;
    const u = l.upstreamMs;
    if (u !== null) {
      const b = bucketOf(u);
      a.up[b] = (a.up[b] ?? 0) + 1;
      if (u > a.upMax) a.upMax = u;
    }
  }
}

/**
 * Where the watermark may move: past every minute that ended `graceMs` before the latest line;
 * and, once the reader has caught up with the file (nothing older can still be in it), past
 * every minute that ended `graceMs` before the wall clock.
 */
export function closableBefore(m: Minutes, now: number, caughtUp: boolean, graceMs: number): number {
  let before = m.latest > 0 ? minuteOf(m.latest - graceMs) : 0;
  if (caughtUp) before = Math.max(before, minuteOf(now - graceMs));
  return Math.max(before, m.watermark);
}

/** Takes the minutes before `before` out of the open set, oldest first. */
export function closeMinutes(m: Minutes, before: number): MinuteAgg[] {
  const out: MinuteAgg[] = [];
  for (const [k, a] of Object.entries(m.open)) {
    if (a.minute < before) { out.push(a); delete m.open[k]; }
  }
  if (before > m.watermark) m.watermark = before;
  return out.sort((x, y) => x.minute - y.minute || (x.tenant < y.tenant ? -1 : x.tenant > y.tenant ? 1 : x.app < y.app ? -1 : x.app > y.app ? 1 : 0));
}

export function usageOf(a: MinuteAgg, node: string, source: UsageMinute['source']): UsageMinute {
  const [s1, s2, s3, s4, s5] = a.status;
  const status: StatusClasses = { '1xx': s1, '2xx': s2, '3xx': s3, '4xx': s4, '5xx': s5 };
  return {
    v: 1, node, source, tenant: a.tenant, app: a.app, minute: new Date(a.minute).toISOString(),
    requests: a.requests, bytesIn: a.bytesIn, bytesOut: a.bytesOut, status, cache: { hit: a.hit, miss: a.miss },
    upstreamMs: percentiles(a.up, a.upMax),
  };
}

// Exact below 100 ms, then 2% wide: a percentile is off by at most 2% and a minute's histogram
// has at most ~450 buckets whatever its traffic.
const EXACT = 100;
const STEP = Math.log(1.02);
export function bucketOf(ms: number): number {
  return ms < EXACT ? Math.max(0, Math.floor(ms)) : EXACT + Math.floor(Math.log(ms / EXACT) / STEP);
}

const bucketValue = (b: number) => (b < EXACT ? b : Math.round(EXACT * Math.exp((b - EXACT + 1) * STEP)));

function percentiles(up: Record<string, number>, max: number): UsageMinute['upstreamMs'] {
  const buckets = Object.entries(up).map(([b, n]) => [Number(b), n] as const).sort((x, y) => x[0] - y[0]);
  const total = buckets.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  const at = (p: number) => {
    const rank = Math.max(1, Math.ceil(p * total));
    let seen = 0;
    for (const [b, n] of buckets) {
      seen += n;
      if (seen >= rank) return Math.min(bucketValue(b), max);
    }
    return max;
  };
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max };
}
