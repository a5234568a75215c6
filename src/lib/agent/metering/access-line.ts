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
  return fastAccessLine(line) ?? parseAccessJson(line);
}

/** parseAccessLine by JSON.parse: any line, in any spelling JSON allows. */
export function parseAccessJson(line: string): AccessLine | 'unattributed' | 'garbage' {
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
  const time = typeof o.time === 'string' ? parseTime(o.time) : NaN;
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

// The fast path. Metering reads every line nginx logs, and JSON.parse of a line (plus Date.parse)
// was most of the agent's cost per request (bench/metering-cost.ts). nginx writes the line in
// exactly the shape of edgectl's log_format (templates/nginx/nginx.conf.ejs): the keys in that
// order, no spaces, strings escaped by escape=json. One regular expression (compiled to native
// code by V8: about a fifth of JSON.parse's time per line here) reads that shape only, and only as
// JSON spells it: each string to its closing quote with its escapes, no raw control character,
// integers without a sign or a leading zero (15 digits at most: safe), the line ending in "}".
// Anything else (another spelling, a torn or spliced line) goes through JSON.parse. So it never
// takes a line JSON.parse would refuse, and what it takes reads the same
// (test/agent/metering-line.test.ts holds the two to one verdict on generated and mutated lines).
// The strings it hands on (time, tenant, app, upstream time, cache) are plain: no escapes at all.
const STR = String.raw`(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*`;
const PLAIN = String.raw`([^"\\\x00-\x1f]*)`;
const INT = '(0|[1-9][0-9]{0,14})';
const LINE = new RegExp(
  `^\\{"time":"${PLAIN}","tenant":"${PLAIN}","app":"${PLAIN}","host":"${STR}","method":"${STR}","uri":"${STR}",` +
    `"status":${INT},"bytes_sent":${INT},"request_length":${INT},"request_time":(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?,` +
    `"upstream_time":"${PLAIN}","cache":"${PLAIN}","remote_addr":"${STR}"\\}$`,
);

export function fastAccessLine(s: string): AccessLine | 'unattributed' | 'garbage' | undefined {
  const m = LINE.exec(s);
  if (!m) return undefined;
  const [, timeText, tenant, app, status, sent, length, upstream, cache] = m;
  // The same checks, in the same order, as parseAccessJson's.
  if (tenant === UNATTRIBUTED) return 'unattributed';
  if (!RE.dnsLabel.test(tenant) || !RE.dnsLabel.test(app)) return 'garbage';
  const time = parseTime(timeText);
  const st = Number(status);
  if (!Number.isFinite(time) || st > 999) return 'garbage';
  return { tenant, app, time, status: st, bytesIn: Number(length), bytesOut: Number(sent), cache: HIT.has(cache) ? 'hit' : MISS.has(cache) ? 'miss' : null, upstreamMs: upstreamMs(upstream) };
}

// nginx logs $time_iso8601 in whole seconds: consecutive lines mostly share it.
let lastTimeText = '';
let lastTime = NaN;
function parseTime(t: string): number {
  if (t !== lastTimeText) {
    lastTime = Date.parse(t);
    lastTimeText = t;
  }
  return lastTime;
}
