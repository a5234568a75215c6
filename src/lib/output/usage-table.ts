import type { UsageLine, UsageReport } from '../usage/report.js';
import { bytesText } from './status-table.js';
import type { TableData } from './plan-table.js';

/** "2026-12-01T00:00:00.000Z" → "2026-12-01 00:00" (UTC, as every time in the report). */
const when = (iso: string) => iso.replace('T', ' ').replace(/:\d{2}\.\d{3}Z$/, '');

const ms = (n: number) => (n < 10 ? n.toFixed(1) : String(Math.round(n)));
const upstream = (l: UsageLine) => (l.upstreamMs ? `${ms(l.upstreamMs.p50Max)} / ${ms(l.upstreamMs.p99Max)} / ${ms(l.upstreamMs.max)}` : '-');
const statuses = (s: UsageLine['status']) => `${s['2xx']} / ${s['3xx']} / ${s['4xx']} / ${s['5xx']}${s['1xx'] ? ` (1xx ${s['1xx']})` : ''}`;
const cache = (c: UsageLine['cache']) => (c.hit + c.miss === 0 ? '-' : `${c.hit} / ${c.miss}`);

/** One row per tenant, period, source and app; the table is for reading, --csv and --json are exact. */
export function usageTable(r: UsageReport): TableData {
  const rows = r.rows.map((l) => [
    l.tenant, `${when(l.start)} .. ${when(l.end)}`, l.source === 'httpq' ? `httpq ${l.app}` : l.app,
    String(l.requests), bytesText(l.bytesIn), bytesText(l.bytesOut), statuses(l.status), cache(l.cache), upstream(l),
  ]);
  return { head: ['TENANT', 'PERIOD (UTC, [start, end))', 'APP', 'REQUESTS', 'IN', 'OUT', '2xx / 3xx / 4xx / 5xx', 'CACHE HIT / MISS', 'UPSTREAM MS p50↑ / p99↑ / max'], rows };
}

export function usageTotalsText(r: UsageReport): string {
  const span = `${r.from ? when(r.from) : 'the first minute stored'} .. ${r.to ? when(r.to) : 'the last'} (UTC)`;
  if (r.totals.length === 0) return `no usage in ${span}`;
  const lines = r.totals.map((t) => `${t.tenant}: ${t.nginxRequests} request(s), ${t.httpqMessages} HTTPQ message(s), ${bytesText(t.bytesIn)} in, ${bytesText(t.bytesOut)} out`);
  return [`totals for ${span}:`, ...lines.map((l) => `  ${l}`)].join('\n');
}
