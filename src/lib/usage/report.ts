import { EdgectlError } from '../errors.js';
import { periodEnd, type Granularity } from './bounds.js';

/**
 * `edgectl usage`: the per-tenant report a billing run needs, built from rows of
 * edgectl_usage_minutes that the reader (db.ts) already summed per tenant, app, source and period.
 * Pure: no clock, no database.
 */
export const USAGE_FORMAT = 'edgectl-usage/v1';

export interface Counters {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  status: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  cache: { hit: number; miss: number };
}

/**
 * Upstream time over a period, from the per-minute summaries the agents ship (each minute holds
 * p50/p90/p99/max of its own requests; how many of them went upstream is not stored). A true
 * percentile over a period cannot be rebuilt from those, so the report gives, for each, the
 * highest minute value: an upper bound of the period's percentile (if every minute has at most
 * 1% of its requests above its own p99, then at most 1% of all are above the highest p99), up to
 * the histogram's resolution (whole milliseconds below 100 ms, agent/metering/minutes.ts). `max`
 * is exact. `null` when no minute of the period had an upstream (static files only).
 */
export interface UpstreamMs {
  p50Max: number;
  p90Max: number;
  p99Max: number;
  max: number;
}

/** One summed group as the reader returns it (bigint sums arrive as decimal strings). */
export interface SummedRow {
  period: Date | null;
  tenant: string;
  app: string;
  source: string;
  minutes: number | string;
  nodes: number | string;
  requests: number | string;
  bytes_in: number | string;
  bytes_out: number | string;
  status_1xx: number | string;
  status_2xx: number | string;
  status_3xx: number | string;
  status_4xx: number | string;
  status_5xx: number | string;
  cache_hit: number | string;
  cache_miss: number | string;
  p50_max: number | null;
  p90_max: number | null;
  p99_max: number | null;
  max: number | null;
  first_minute: Date;
  last_minute: Date;
}

export interface UsageLine extends Counters {
  /** [start, end) of the period, UTC, clipped to the report's bounds. */
  start: string;
  end: string;
  tenant: string;
  /** nginx: the tenant's app as `tenant.app`; httpq: the HTTPQ topic the devices posted to. */
  app: string;
  source: 'nginx' | 'httpq';
  /** Minute rows summed (one per node, app and minute with traffic) and nodes they came from. */
  minutes: number;
  nodes: number;
  upstreamMs: UpstreamMs | null;
}

export interface TenantTotal extends Counters {
  tenant: string;
  /** Of the requests: served by nginx, and HTTPQ messages accepted. */
  nginxRequests: number;
  httpqMessages: number;
}

export interface UsageReport {
  format: typeof USAGE_FORMAT;
  /** The bounds asked for (half-open, UTC); null when not given. */
  from: string | null;
  to: string | null;
  by: Granularity | null;
  tenants: string[] | null;
  rows: UsageLine[];
  totals: TenantTotal[];
}

export interface ReportOptions {
  from: Date | null;
  to: Date | null;
  by: Granularity | null;
  tenants: string[] | null;
}

const MINUTE = 60_000;

function count(v: number | string, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new EdgectlError('EDGECTL_HUB_DB', `the hub database returned ${what} = ${String(v).slice(0, 40)}, which is not a count this report can add exactly`);
  return n;
}

const add = (a: number, b: number, what: string) => {
  const s = a + b;
  if (!Number.isSafeInteger(s)) throw new EdgectlError('EDGECTL_HUB_DB', `the total of ${what} is too large to add exactly`);
  return s;
};

const zero = (): Counters => ({ requests: 0, bytesIn: 0, bytesOut: 0, status: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, cache: { hit: 0, miss: 0 } });

function addInto(t: Counters, c: Counters): void {
  t.requests = add(t.requests, c.requests, 'requests');
  t.bytesIn = add(t.bytesIn, c.bytesIn, 'bytes in');
  t.bytesOut = add(t.bytesOut, c.bytesOut, 'bytes out');
  for (const k of ['1xx', '2xx', '3xx', '4xx', '5xx'] as const) t.status[k] = add(t.status[k], c.status[k], `status ${k}`);
  t.cache.hit = add(t.cache.hit, c.cache.hit, 'cache hits');
  t.cache.miss = add(t.cache.miss, c.cache.miss, 'cache misses');
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function buildReport(rows: SummedRow[], o: ReportOptions): UsageReport {
  const lines: UsageLine[] = rows.map((r) => {
    const source = r.source === 'httpq' ? 'httpq' : 'nginx';
    let start: number;
    let end: number;
    if (o.by && r.period) {
      start = r.period.getTime();
      end = periodEnd(start, o.by);
    } else {
      // No --by: one period, the bounds asked for, or where unbounded the minutes there are.
      start = o.from?.getTime() ?? r.first_minute.getTime();
      end = o.to?.getTime() ?? r.last_minute.getTime() + MINUTE;
    }
    if (o.from) start = Math.max(start, o.from.getTime());
    if (o.to) end = Math.min(end, o.to.getTime());
    const up = r.max === null ? null : { p50Max: r.p50_max ?? 0, p90Max: r.p90_max ?? 0, p99Max: r.p99_max ?? 0, max: r.max };
    return {
      start: new Date(start).toISOString(), end: new Date(end).toISOString(),
      tenant: r.tenant, app: r.app, source,
      minutes: count(r.minutes, 'minutes'), nodes: count(r.nodes, 'nodes'),
      requests: count(r.requests, 'requests'), bytesIn: count(r.bytes_in, 'bytes_in'), bytesOut: count(r.bytes_out, 'bytes_out'),
      status: { '1xx': count(r.status_1xx, 'status_1xx'), '2xx': count(r.status_2xx, 'status_2xx'), '3xx': count(r.status_3xx, 'status_3xx'), '4xx': count(r.status_4xx, 'status_4xx'), '5xx': count(r.status_5xx, 'status_5xx') },
      cache: { hit: count(r.cache_hit, 'cache_hit'), miss: count(r.cache_miss, 'cache_miss') },
      upstreamMs: up,
    };
  });
  lines.sort((a, b) => cmp(a.tenant, b.tenant) || cmp(a.source, b.source) || cmp(a.app, b.app) || cmp(a.start, b.start));
  const totals = new Map<string, TenantTotal>();
  for (const l of lines) {
    let t = totals.get(l.tenant);
    if (!t) totals.set(l.tenant, (t = { tenant: l.tenant, ...zero(), nginxRequests: 0, httpqMessages: 0 }));
    addInto(t, l);
    if (l.source === 'nginx') t.nginxRequests = add(t.nginxRequests, l.requests, 'requests');
    else t.httpqMessages = add(t.httpqMessages, l.requests, 'messages');
  }
  // A tenant asked for by name is in the totals even with no usage: "0" is an answer a bill needs.
  for (const name of o.tenants ?? []) if (!totals.has(name)) totals.set(name, { tenant: name, ...zero(), nginxRequests: 0, httpqMessages: 0 });
  return {
    format: USAGE_FORMAT,
    from: o.from?.toISOString() ?? null,
    to: o.to?.toISOString() ?? null,
    by: o.by,
    tenants: o.tenants,
    rows: lines,
    totals: [...totals.values()].sort((a, b) => cmp(a.tenant, b.tenant)),
  };
}

/** CSV columns, in order: one line per report row. */
export const CSV_COLUMNS = [
  'start', 'end', 'tenant', 'source', 'app', 'requests', 'bytes_in', 'bytes_out',
  'status_1xx', 'status_2xx', 'status_3xx', 'status_4xx', 'status_5xx', 'cache_hit', 'cache_miss',
  'upstream_ms_p50_max', 'upstream_ms_p90_max', 'upstream_ms_p99_max', 'upstream_ms_max', 'minutes', 'nodes',
] as const;

/**
 * RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. A field a
 * spreadsheet would run as a formula (= + - @, tab, CR first) gets a leading apostrophe inside
 * the quotes; tenant and app names cannot start so (they are DNS labels), but this is not where
 * that is checked.
 */
export function csvField(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function usageCsv(r: UsageReport): string {
  const out = [CSV_COLUMNS.join(',')];
  for (const l of r.rows) {
    const u = l.upstreamMs;
    out.push([l.start, l.end, l.tenant, l.source, l.app, l.requests, l.bytesIn, l.bytesOut,
      l.status['1xx'], l.status['2xx'], l.status['3xx'], l.status['4xx'], l.status['5xx'], l.cache.hit, l.cache.miss,
      u?.p50Max ?? null, u?.p90Max ?? null, u?.p99Max ?? null, u?.max ?? null, l.minutes, l.nodes].map(csvField).join(','));
  }
  return out.join('\r\n') + '\r\n';
}
