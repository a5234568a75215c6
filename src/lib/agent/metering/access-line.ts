import { RE } from '../../fleet/values.js';

/** What metering takes from one line of nginx's edgectl_json access log (templates/nginx/nginx.conf.ejs). */
export interface AccessLine {
  tenant: string;
  app: string;
  /** When nginx logged it (ms since the epoch; $time_iso8601 has whole seconds). */
  time: number;
  status: number;
  bytesIn: number;
  bytesOut: number;
  cache: 'hit' | 'miss' | null;
  /** Sum of the upstream response times of the request (several upstreams tried), ms; null if none. */
  upstreamMs: number | null;
}

/** The default server's requests (unknown hosts, node endpoints): no tenant to bill. */
export const UNATTRIBUTED = '-';

// nginx's $upstream_cache_status values: served from the cache, or fetched from the upstream.
const HIT = new Set(['HIT', 'STALE', 'UPDATING', 'REVALIDATED']);
const MISS = new Set(['MISS', 'EXPIRED', 'BYPASS']);

const count = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

/**
 * One line, or a reason it is not one. A tenant can put anything in a header nginx logs (escape=json
 * keeps the line JSON, but a disk error or a hand-edited format may not), so nothing here throws.
 */
export function parseAccessLine(line: string): AccessLine | 'unattributed' | 'garbage' {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return 'garbage';
  }
  if (typeof o !== 'object' || o === null) return 'garbage';
  const { tenant, app } = o;
  if (tenant === UNATTRIBUTED) return 'unattributed';
  if (typeof tenant !== 'string' || !RE.dnsLabel.test(tenant) || typeof app !== 'string' || !RE.dnsLabel.test(app)) return 'garbage';
  const time = typeof o.time === 'string' ? Date.parse(o.time) : NaN;
  const status = count(o.status);
  const bytesOut = count(o.bytes_sent);
  const bytesIn = count(o.request_length);
  if (!Number.isFinite(time) || status === undefined || status > 999 || bytesOut === undefined || bytesIn === undefined) return 'garbage';
  const c = typeof o.cache === 'string' ? o.cache : '';
  return { tenant, app, time, status, bytesIn, bytesOut, cache: HIT.has(c) ? 'hit' : MISS.has(c) ? 'miss' : null, upstreamMs: upstreamMs(o.upstream_time) };
}

/** "0.004", "0.002, 0.004" (next upstream), "0.001 : 0.003" (internal redirect), "-" or "": seconds → ms. */
function upstreamMs(v: unknown): number | null {
  if (typeof v !== 'string' || v.length > 200) return null;
  let sum = 0;
  let any = false;
  for (const part of v.split(/[,:]/)) {
    const s = part.trim();
    if (!/^\d{1,9}(?:\.\d{1,3})?$/.test(s)) continue;
    sum += Number(s) * 1000;
    any = true;
  }
  return any ? Math.round(sum) : null;
}
