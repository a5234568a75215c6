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
const shape = (plain: string, int: string) =>
  `\\{"time":"${plain}","tenant":"${plain}","app":"${plain}","host":"${STR}","method":"${STR}","uri":"${STR}",` +
  `"status":${int},"bytes_sent":${int},"request_length":${int},"request_time":(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?,` +
  `"upstream_time":"${plain}","cache":"${plain}","remote_addr":"${STR}"\\}`;
const LINE = new RegExp(`^${shape(PLAIN, INT)}$`);

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


// The fast path as the agent runs it on every line (access-log.ts): on the read buffer's bytes.
// Decoding each chunk as UTF-8, splitting it into strings, the captures, Number() and an object
// per line were most of the agent's CPU per request (bench/metering-parse.ts). Here the buffer is
// decoded as latin1 in windows of whole lines (a byte per character: a copy, and small windows stay
// in V8's young space), and the same shape as LINE, without captures and ending in the newline,
// is matched at each line with a sticky regular expression. Latin1 and UTF-8 differ only in what
// bytes from 0x80 up become, and the shape only names ASCII characters and takes any other one
// where it takes a non-ASCII one (a decoder keeps every ASCII byte as it is, even next to invalid
// bytes): so a line matches here exactly when its UTF-8 text matches LINE. A matched line's fields
// are found from its bytes: a PLAIN field has no quote, and no STR field can hold a quote that
// follows a comma (a quote in a JSON string follows its backslash), so `","status":` occurs once.
// Numbers are read from their digits, the tenant and app decoded and checked once per distinct
// pair (a small table of recent ones), the time parsed once per distinct second, and the answer is
// written into one object, lent to the caller until the next line. A line that does not match is
// decoded as UTF-8 for parseAccessJson, as before.
const LINE_NL = new RegExp(`${shape('[^"\\\\\\x00-\\x1f]*', '(?:0|[1-9][0-9]{0,14})')}\\n`, 'y');
/** Lines are decoded in windows of about this many bytes (a longer line is decoded alone). */
const WINDOW = 16 << 10;

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const C_HIT = [ascii('HIT'), ascii('STALE'), ascii('UPDATING'), ascii('REVALIDATED')];
const C_MISS = [ascii('MISS'), ascii('EXPIRED'), ascii('BYPASS')];
function isAt(b: Uint8Array, i: number, e: number, k: Uint8Array): boolean {
  if (e - i !== k.length) return false;
  for (let j = 0; j < k.length; j++) if (b[i + j] !== k[j]) return false;
  return true;
}
function cacheOf(b: Uint8Array, i: number, e: number): 'hit' | 'miss' | null {
  if (e - i < 3 || e - i > 11) return null;
  for (const k of C_HIT) if (isAt(b, i, e, k)) return 'hit';
  for (const k of C_MISS) if (isAt(b, i, e, k)) return 'miss';
  return null;
}

const quoteFrom = (b: Uint8Array, i: number) => { while (b[i] !== 0x22) i++; return i; };
/** The digits at `i` (the shape guarantees at most 15: exact). */
function digits(b: Uint8Array, i: number): number {
  let v = 0;
  for (let c = b[i]; c >= 0x30 && c <= 0x39; c = b[++i]) v = v * 10 + (c - 0x30);
  return v;
}
const digitsEnd = (b: Uint8Array, i: number) => { while (b[i] >= 0x30 && b[i] <= 0x39) i++; return i; };

/** upstreamMs on bytes when they are ASCII; undefined: let the string version decide. */
function upstreamBytes(b: Uint8Array, i: number, e: number): number | null | undefined {
  for (let j = i; j < e; j++) if (b[j] >= 0x80) return undefined; // perhaps a space trim() removes (U+00A0 and the like)
  if (e - i > 200) return null;
  let sum = 0;
  let any = false;
  for (let j = i; j <= e; j++) {
    // A part: spaces, \d{1,9}(\.\d{1,3})?, spaces, then a separator or the end; any other part is skipped.
    while (j < e && b[j] === 0x20) j++;
    let whole = 0;
    let d = 0;
    while (j < e && b[j] >= 0x30 && b[j] <= 0x39) { whole = whole * 10 + (b[j] - 0x30); d++; j++; }
    let ok = d >= 1 && d <= 9;
    let frac = 0;
    if (j < e && b[j] === 0x2e) {
      j++;
      let f = 0;
      while (j < e && b[j] >= 0x30 && b[j] <= 0x39) { frac = frac * 10 + (b[j] - 0x30); f++; j++; }
      if (f < 1 || f > 3) ok = false;
      else frac *= f === 1 ? 100 : f === 2 ? 10 : 1;
    }
    while (j < e && b[j] === 0x20) j++;
    if (j < e && b[j] !== 0x2c && b[j] !== 0x3a) {
      ok = false;
      while (j < e && b[j] !== 0x2c && b[j] !== 0x3a) j++;
    }
    if (ok) { sum += whole * 1000 + frac; any = true; }
  }
  return any ? sum : null;
}

/** Tenant and app of recent lines, by the bytes from the tenant's first to the app's last. */
interface Pair { key: Uint8Array; tenant: string; app: string; verdict: 'ok' | 'unattributed' | 'garbage' }
const PAIRS = new Array<Pair | undefined>(256).fill(undefined);
function pairOf(b: Buffer, ts: number, te: number, as: number, ae: number): Pair {
  // A hash of a few bytes picks the slot; the whole key is compared.
  const slot = ((ae - ts) * 31 + b[ts] * 7 + b[te - 1] * 3 + b[ae - 1]) & 255;
  const p = PAIRS[slot];
  if (p !== undefined && p.key.length === ae - ts) {
    const k = p.key;
    let j = 0;
    while (j < k.length && k[j] === b[ts + j]) j++;
    if (j === k.length) return p;
  }
  const tenant = b.toString('utf8', ts, te);
  const app = b.toString('utf8', as, ae);
  const verdict = tenant === UNATTRIBUTED ? 'unattributed' : RE.dnsLabel.test(tenant) && RE.dnsLabel.test(app) ? 'ok' : 'garbage';
  return (PAIRS[slot] = { key: Uint8Array.from(b.subarray(ts, ae)), tenant, app, verdict });
}

// The last line's time text (nginx's $time_iso8601: 25 bytes) and its value.
const lastTimeBytes = new Uint8Array(32);
let lastTimeLen = -1;
const scratch: AccessLine = { tenant: '', app: '', time: NaN, status: 0, bytesIn: 0, bytesOut: 0, cache: null, upstreamMs: null };
/** Sets scratch.time. */
function timeOf(b: Buffer, i: number, e: number): void {
  const n = e - i;
  if (n === lastTimeLen) {
    let j = 0;
    while (j < n && lastTimeBytes[j] === b[i + j]) j++;
    if (j === n) return; // scratch.time still holds it
  }
  scratch.time = parseTime(b.toString('utf8', i, e));
  if (n <= lastTimeBytes.length) { lastTimeBytes.set(b.subarray(i, e)); lastTimeLen = n; } else lastTimeLen = -1;
}

/** A line that matched LINE_NL, at b[s..): parseAccessLine's verdict. */
function matched(b: Buffer, s: number): AccessLine | 'unattributed' | 'garbage' {
  const ts = s + '{"time":"'.length;
  const te = quoteFrom(b, ts);
  const tn = te + '","tenant":"'.length;
  const tnEnd = quoteFrom(b, tn);
  const ap = tnEnd + '","app":"'.length;
  const apEnd = quoteFrom(b, ap);
  // The same checks, in the same order, as parseAccessJson's.
  const p = pairOf(b, tn, tnEnd, ap, apEnd);
  if (p.verdict !== 'ok') return p.verdict;
  let st = apEnd;
  while (!(b[st] === 0x2c && b[st + 1] === 0x22 && b[st + 2] === 0x73)) st++; // ,"s: the first is ,"status":
  st += ',"status":'.length;
  const status = digits(b, st);
  timeOf(b, ts, te);
  if (!Number.isFinite(scratch.time) || status > 999) return 'garbage';
  const sent = digitsEnd(b, st) + ',"bytes_sent":'.length;
  const len = digitsEnd(b, sent) + ',"request_length":'.length;
  let up = digitsEnd(b, len) + ',"request_time":'.length;
  up = digitsEnd(b, up);
  if (b[up] === 0x2e) up = digitsEnd(b, up + 1);
  up += ',"upstream_time":"'.length;
  const upEnd = quoteFrom(b, up);
  const ca = upEnd + '","cache":"'.length;
  const l = scratch;
  l.tenant = p.tenant;
  l.app = p.app;
  l.status = status;
  l.bytesOut = digits(b, sent);
  l.bytesIn = digits(b, len);
  l.cache = cacheOf(b, ca, quoteFrom(b, ca));
  const u = upstreamBytes(b, up, upEnd);
  l.upstreamMs = u !== undefined ? u : upstreamMs(b.toString('utf8', up, upEnd));
  return l;
}

/**
 * Every line of b[0, end) (`end` just past a newline, or 0): parseAccessLine's verdict on each
 * non-empty one, in order. An AccessLine handed to `on` is lent: it is reused for the next line.
 */
export function scanAccessLines(b: Buffer, end: number, on: (l: AccessLine | 'unattributed' | 'garbage') => void): void {
  for (let w = 0; w < end;) {
    let wEnd = w + WINDOW >= end ? end : b.lastIndexOf(0x0a, w + WINDOW - 1) + 1;
    if (wEnd <= w) wEnd = b.indexOf(0x0a, w) + 1; // one line longer than a window
    const text = b.toString('latin1', w, wEnd);
    for (let i = 0; i < text.length;) {
      LINE_NL.lastIndex = i;
      if (LINE_NL.test(text)) {
        on(matched(b, w + i));
        i = LINE_NL.lastIndex;
      } else {
        const nl = text.indexOf('\n', i);
        if (nl > i) on(parseAccessJson(b.toString('utf8', w + i, w + nl)));
        i = nl + 1;
      }
    }
    w = wEnd;
  }
}
