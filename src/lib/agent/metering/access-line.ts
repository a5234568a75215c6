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
const shape = (plain: string, int: string, str = STR) =>
  `\\{"time":"${plain}","tenant":"${plain}","app":"${plain}","host":"${str}","method":"${str}","uri":"${str}",` +
  `"status":${int},"bytes_sent":${int},"request_length":${int},"request_time":(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?,` +
  `"upstream_time":"${plain}","cache":"${plain}","remote_addr":"${str}"\\}`;
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
const NORMAL = '[^"\\\\\\x00-\\x1f]*';
const LINE_NL = new RegExp(`${shape(NORMAL, '(?:0|[1-9][0-9]{0,14})', `${NORMAL}(?:\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})${NORMAL})*`)}\\n`, 'y');
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

const Q = 0x22; // "
const quoteFrom = (b: Uint8Array, i: number) => { while (b[i] !== Q) i++; return i; };

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

/** A tenant and app seen lately: the line's bytes from the tenant's first to the app's last (`key`). */
interface Pair { key: Uint8Array; tenant: string; app: string; verdict: 'ok' | 'unattributed' | 'garbage' }
/** The most recent first; a line's pair is compared with these before its fields are looked for. */
const RECENT: Pair[] = [];
const PAIRS = new Array<Pair | undefined>(256).fill(undefined);

/** b[i, i + k.length) is k, and a quote follows it. */
function keyAt(b: Uint8Array, i: number, k: Uint8Array): boolean {
  const n = k.length;
  if (b[i + n] !== Q) return false;
  for (let j = 0; j < n; j++) if (b[i + j] !== k[j]) return false;
  return true;
}

/**
 * The pair of the line whose tenant starts at `tn`. A recent pair's key followed by a quote is this
 * line's: neither name holds a quote, so the bytes that match end the tenant and the app where the
 * key does. Otherwise the fields are found, and their names decoded and checked once.
 */
function pairAt(b: Buffer, tn: number): Pair {
  for (let r = 0; r < RECENT.length; r++) {
    const p = RECENT[r];
    if (keyAt(b, tn, p.key)) {
      if (r > 0) { RECENT[r] = RECENT[0]; RECENT[0] = p; }
      return p;
    }
  }
  const te = quoteFrom(b, tn);
  const as = te + '","app":"'.length;
  const ae = quoteFrom(b, as);
  // A hash of a few bytes picks the slot; the whole key is compared.
  const slot = ((ae - tn) * 31 + b[tn] * 7 + b[te - 1] * 3 + b[ae - 1]) & 255;
  let p = PAIRS[slot];
  if (p === undefined || p.key.length !== ae - tn || !keyAt(b, tn, p.key)) {
    const tenant = b.toString('utf8', tn, te);
    const app = b.toString('utf8', as, ae);
    const verdict = tenant === UNATTRIBUTED ? 'unattributed' : RE.dnsLabel.test(tenant) && RE.dnsLabel.test(app) ? 'ok' : 'garbage';
    p = PAIRS[slot] = { key: Uint8Array.from(b.subarray(tn, ae)), tenant, app, verdict };
  }
  RECENT.unshift(p);
  if (RECENT.length > 4) RECENT.pop();
  return p;
}

// The last line's time text (nginx's $time_iso8601: 25 bytes, the same for a second's lines) and its value.
let lastTimeBytes = new Uint8Array(0);
const scratch: AccessLine = { tenant: '', app: '', time: NaN, status: 0, bytesIn: 0, bytesOut: 0, cache: null, upstreamMs: null };
/** Sets scratch.time from the time at `ts`; where the time ends (its closing quote). */
function timeAt(b: Buffer, ts: number): number {
  if (keyAt(b, ts, lastTimeBytes)) return ts + lastTimeBytes.length; // scratch.time holds its value
  const te = quoteFrom(b, ts);
  scratch.time = parseTime(b.toString('utf8', ts, te));
  lastTimeBytes = Uint8Array.from(b.subarray(ts, te));
  return te;
}

const quoteBack = (b: Uint8Array, i: number) => { while (b[i] !== Q) i--; return i; };
/** The digits that end before `e` (at most 15, the shape says: exact); their first in `at`. */
let at = 0;
function digitsBack(b: Uint8Array, e: number): number {
  let v = 0;
  let m = 1;
  let i = e - 1;
  for (let c = b[i]; c >= 0x30 && c <= 0x39; c = b[--i]) { v += (c - 0x30) * m; m *= 10; }
  at = i + 1;
  return v;
}

const K_ADDR = '","remote_addr":"'.length;
const K_CACHE = '","cache":"'.length;
const K_UPSTREAM = ',"upstream_time":"'.length;
const K_RTIME = ',"request_time":'.length;
const K_LENGTH = ',"request_length":'.length;
const K_SENT = ',"bytes_sent":'.length;

/**
 * A line that matched LINE_NL, b[s, nl) (nl: its newline): parseAccessLine's verdict. The time,
 * tenant and app are found from the start; the rest from the end, back to the status: the only
 * quote that follows a colon that follows a quote, from the end, is the one that opens the remote
 * address (in a JSON string a quote follows its backslash), and the fields before it are a PLAIN
 * field (no quote) or numbers. So host, method and URI, however long, are not read again.
 */
function matched(b: Buffer, s: number, nl: number): AccessLine | 'unattributed' | 'garbage' {
  const te = timeAt(b, s + '{"time":"'.length);
  const p = pairAt(b, te + '","tenant":"'.length);
  // The same checks, in the same order, as parseAccessJson's.
  if (p.verdict !== 'ok') return p.verdict;
  let q = nl - 5; // the end is "} and the address can be empty: its opening quote is at nl - 3 or before
  while (!(b[q + 2] === Q && b[q + 1] === 0x3a && b[q] === Q)) q--;
  const caEnd = q + 3 - K_ADDR;
  const ca = quoteBack(b, caEnd - 1) + 1;
  const upEnd = ca - K_CACHE;
  const up = quoteBack(b, upEnd - 1) + 1;
  let i = up - K_UPSTREAM - 1;
  while (b[i] !== 0x3a) i--; // over request_time, to the colon before it
  const l = scratch;
  l.bytesIn = digitsBack(b, i + 1 - K_RTIME);
  l.bytesOut = digitsBack(b, at - K_LENGTH);
  const status = digitsBack(b, at - K_SENT);
  if (!Number.isFinite(l.time) || status > 999) return 'garbage';
  l.tenant = p.tenant;
  l.app = p.app;
  l.status = status;
  l.cache = cacheOf(b, ca, caEnd);
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
        const next = LINE_NL.lastIndex;
        on(matched(b, w + i, w + next - 1));
        i = next;
      } else {
        const nl = text.indexOf('\n', i);
        if (nl > i) on(parseAccessJson(b.toString('utf8', w + i, w + nl)));
        i = nl + 1;
      }
    }
    w = wEnd;
  }
}
