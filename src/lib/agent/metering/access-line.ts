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
// order, no spaces, strings escaped by escape=json. The fast path reads that shape only, checking
// every byte of it as JSON would (each string scanned to its closing quote with its escapes,
// control characters refused, numbers spelled as JSON spells them, the line ending in "}"), and
// gives up (undefined) on anything else, which then goes through JSON.parse. So it never takes a
// line JSON.parse would refuse, and what it takes reads the same (test/agent/metering-line.test.ts
// holds the two to one verdict on generated and mutated lines).

const K_TIME = '{"time":"';
const K_TENANT = ',"tenant":"';
const K_APP = ',"app":"';
const K_HOST = ',"host":"';
const K_METHOD = ',"method":"';
const K_URI = ',"uri":"';
const K_STATUS = ',"status":';
const K_SENT = ',"bytes_sent":';
const K_LENGTH = ',"request_length":';
const K_RTIME = ',"request_time":';
const K_UPSTREAM = ',"upstream_time":"';
const K_CACHE = ',"cache":"';
const K_REMOTE = ',"remote_addr":"';

/** End of the JSON string whose first character is at i (the index of its closing quote), or -1. */
function stringEnd(s: string, i: number): number {
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j;
    if (c < 0x20) return -1;
    if (c === 0x5c) {
      const e = s.charCodeAt(++j);
      if (e === 0x75) {
        if (!/^[0-9a-fA-F]{4}$/.test(s.slice(j + 1, j + 5))) return -1;
        j += 4;
      } else if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return -1;
    }
  }
  return -1;
}

/** A string with no escapes at i..: its end, or -1 (an escape or a control character: left to JSON.parse). */
function plainEnd(s: string, i: number): number {
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j;
    if (c < 0x20 || c === 0x5c) return -1;
  }
  return -1;
}

/** A JSON integer at i (no sign, no leading zero, at most 15 digits): [value, end] or undefined. */
function intAt(s: string, i: number): [number, number] | undefined {
  let j = i;
  let v = 0;
  for (; j < s.length && j - i <= 15; j++) {
    const d = s.charCodeAt(j) - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  if (j === i || j - i > 15 || (s.charCodeAt(i) === 48 && j - i > 1)) return undefined;
  return [v, j];
}

/** The end of a JSON number nginx writes for $request_time ("0.001"), or -1. */
function decimalEnd(s: string, i: number): number {
  const n = intAt(s, i);
  if (!n) return -1;
  let j = n[1];
  if (s.charCodeAt(j) !== 0x2e) return j;
  const f = ++j;
  while (j < s.length && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
  return j > f ? j : -1;
}

export function fastAccessLine(s: string): AccessLine | 'unattributed' | 'garbage' | undefined {
  if (!s.startsWith(K_TIME)) return undefined;
  let i = K_TIME.length;
  const te = plainEnd(s, i);
  if (te < 0 || !s.startsWith(K_TENANT, te + 1)) return undefined;
  const timeText = s.slice(i, te);
  i = te + 1 + K_TENANT.length;
  const ne = plainEnd(s, i);
  if (ne < 0 || !s.startsWith(K_APP, ne + 1)) return undefined;
  const tenant = s.slice(i, ne);
  i = ne + 1 + K_APP.length;
  const ae = plainEnd(s, i);
  if (ae < 0) return undefined;
  const app = s.slice(i, ae);
  i = ae + 1;
  for (const k of [K_HOST, K_METHOD, K_URI]) {
    if (!s.startsWith(k, i)) return undefined;
    const e = stringEnd(s, i + k.length);
    if (e < 0) return undefined;
    i = e + 1;
  }
  if (!s.startsWith(K_STATUS, i)) return undefined;
  const st = intAt(s, i + K_STATUS.length);
  if (!st || !s.startsWith(K_SENT, st[1])) return undefined;
  const sent = intAt(s, st[1] + K_SENT.length);
  if (!sent || !s.startsWith(K_LENGTH, sent[1])) return undefined;
  const len = intAt(s, sent[1] + K_LENGTH.length);
  if (!len || !s.startsWith(K_RTIME, len[1])) return undefined;
  const rt = decimalEnd(s, len[1] + K_RTIME.length);
  if (rt < 0 || !s.startsWith(K_UPSTREAM, rt)) return undefined;
  i = rt + K_UPSTREAM.length;
  const ue = plainEnd(s, i);
  if (ue < 0 || !s.startsWith(K_CACHE, ue + 1)) return undefined;
  const upstream = s.slice(i, ue);
  i = ue + 1 + K_CACHE.length;
  const ce = plainEnd(s, i);
  if (ce < 0 || !s.startsWith(K_REMOTE, ce + 1)) return undefined;
  const cache = s.slice(i, ce);
  const re = stringEnd(s, ce + 1 + K_REMOTE.length);
  if (re < 0 || re !== s.length - 2 || s.charCodeAt(re + 1) !== 0x7d) return undefined;
  // The same checks, in the same order, as parseAccessJson's.
  if (tenant === UNATTRIBUTED) return 'unattributed';
  if (!RE.dnsLabel.test(tenant) || !RE.dnsLabel.test(app)) return 'garbage';
  const time = parseTime(timeText);
  if (!Number.isFinite(time) || st[0] > 999) return 'garbage';
  return { tenant, app, time, status: st[0], bytesIn: len[0], bytesOut: sent[0], cache: HIT.has(cache) ? 'hit' : MISS.has(cache) ? 'miss' : null, upstreamMs: upstreamMs(upstream) };
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
