import { createServer, type Server, type Socket } from 'node:net';
import { STATUS_CODES, type Server as HttpServer } from 'node:http';
import type { AgentContext } from '../context.js';
import { takeToken, tenantForToken } from '../context.js';
import { RE } from '../../fleet/values.js';
import { CONTENT_TYPE } from '../store/record.js';
import { storeFailure } from './intake.js';
import { firstId } from '../store/spool.js';

/**
 * The device port's front: single durable POSTs of the plainest shape are answered here, on the
 * socket, without Node's HTTP server, whose per-request work capped the intake (a do-nothing
 * Node server answered 25,000-29,000 req/s where a raw socket answered 50,000, same run). The
 * fast path takes a request only when all of it is already read and every part is the plainest
 * case: `POST /v1/q/<topic> HTTP/1.1`, visible-ASCII headers from a short list, each at most
 * once, a Content-Length within the message limit, not NDJSON, a known token, a declared topic,
 * rate allowed. Anything else (a partial request, any other header such as Transfer-Encoding,
 * Expect or Idempotency-Key, a refusal to answer, another endpoint) hands the connection, and
 * the bytes read, to Node's HTTP server for good, at a request boundary with nothing unanswered:
 * every error answer, limit, timeout and hostile-input guarantee stays Node's and the handlers'.
 * EDGECTL_INTAKE_FASTPATH=0 turns the front off (measuring).
 */
export const fastIntakeEnabled = process.env.EDGECTL_INTAKE_FASTPATH !== '0';

const MAX_HEAD = 8192;
const NDJSON = /^application\/(x-)?ndjson\b/i;

const PREFIX = Buffer.from('POST /v1/q/', 'latin1');
const VERSION = Buffer.from(' HTTP/1.1', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const BEARER = Buffer.from('Bearer ', 'latin1');

/** RFC 9110 token characters (a header name), by byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+.^_`|~-") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) { TCHAR[c] = 1; TCHAR[c + 0x20] = 1; }

/**
 * Headers the fast path reads or may ignore (the device handler ignores them too: fetch sends
 * the last four), lower case; any other sends the request to Node. A header's bit is 1 << its
 * index; the first five are read.
 */
const PLAIN = ['host', 'authorization', 'content-type', 'content-length', 'connection', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'sec-fetch-mode'];
const HOST = 1 << 0;
const AUTHORIZATION = 1 << 1;
const CONTENT_TYPE_BIT = 1 << 2;
const CONTENT_LENGTH = 1 << 3;
const CONNECTION = 1 << 4;

/** The bit of the PLAIN header named `buf[a, b)` in any case, or 0. */
function plainHeader(buf: Buffer, a: number, b: number): number {
  for (let i = 0; i < PLAIN.length; i++) if (equalsLower(buf, a, b, PLAIN[i])) return 1 << i;
  return 0;
}

/** `buf` holds `bytes` at `at` (a loop: Buffer#compare's argument checks cost more than these few bytes). */
function bytesAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/** `buf[a, b)` equals `lower` ignoring ASCII case. */
function equalsLower(buf: Buffer, a: number, b: number, lower: string): boolean {
  if (b - a !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = buf[a + i];
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

let dateSecond = -1;
let dateText = '';
function httpDate(): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== dateSecond) { dateSecond = s; dateText = new Date(s * 1000).toUTCString(); }
  return dateText;
}

/** The same answer Node's server and respond.ts send (status, JSON body, the same headers), in one write. */
function answer(socket: Socket, keepAliveS: number, status: number, body: unknown, retryAfter?: number): void {
  const text = JSON.stringify(body);
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n` +
    (retryAfter === undefined ? '' : `retry-after: ${retryAfter}\r\n`) + `Date: ${httpDate()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=${keepAliveS}\r\n\r\n`;
  if (!socket.destroyed) socket.write(head + text);
}

interface Plain {
  topic: string;
  token: string;
  contentType: string;
  length: number;
  headEnd: number;
}

/**
 * The request at the start of `buf` if it is whole and of the plainest shape, else undefined
 * (Node takes it). One pass over the bytes of the head, no string per line: this ran for every
 * request, and the split, regexes and Map it replaced were a tenth of the event loop's time.
 * The rules are those of the regex form kept in the tests (test/agent/fast-intake-parse.test.ts,
 * compared on generated requests): request line `POST /v1/q/<topic> HTTP/1.1`; header lines
 * `name:value` with a token name from PLAIN (each at most once, so ten lines at most) and a
 * value of visible ASCII, space and tab, trimmed of spaces and tabs; Host present; Connection,
 * if any, keep-alive;
 * Content-Length 1-9 digits, within maxBody and all read; `Bearer <1-512 visible chars>`; a
 * content type of 1-100 printable characters, not NDJSON (default application/octet-stream).
 */
export function plainRequest(buf: Buffer, maxBody: number): Plain | undefined {
  const end = buf.indexOf(CRLFCRLF);
  if (end === -1 || end > MAX_HEAD) return undefined;
  // Request line.
  if (end < PREFIX.length + VERSION.length || !bytesAt(buf, 0, PREFIX)) return undefined;
  // The line ends at the first CR, which must start CRLF (the head's end does).
  const eol = buf.indexOf(13, PREFIX.length);
  if (buf[eol + 1] !== 10) return undefined;
  const topicEnd = eol - VERSION.length;
  if (topicEnd < PREFIX.length || !bytesAt(buf, topicEnd, VERSION)) return undefined;
  // The topic is checked against the fleet's rule (RE.topic: lower-case letters, digits, '_', '-').
  const topic = buf.toString('latin1', PREFIX.length, topicEnd);
  if (!RE.topic.test(topic)) return undefined;
  let seen = 0;
  let token: string | undefined;
  let contentType: string | undefined;
  let length = -1;
  let i = eol;
  while (i < end) {
    // buf[i] is the CR of the line before; the next line starts after its LF.
    const a = i + 2;
    // Name: token characters up to the colon.
    let j = a;
    while (j < end && TCHAR[buf[j]] === 1) j++;
    if (j === a || j >= end || buf[j] !== 58) return undefined;
    const bit = plainHeader(buf, a, j);
    if (bit === 0 || (seen & bit) !== 0) return undefined;
    seen |= bit;
    // Value: visible ASCII, space, tab up to the CR, which must start CRLF (the head's end does).
    let k = j + 1;
    while (k < end) {
      const c = buf[k];
      if ((c >= 0x20 && c <= 0x7e) || c === 9) k++;
      else break;
    }
    if (buf[k] !== 13 || buf[k + 1] !== 10) return undefined;
    let va = j + 1;
    let vb = k;
    while (va < vb && (buf[va] === 32 || buf[va] === 9)) va++;
    while (vb > va && (buf[vb - 1] === 32 || buf[vb - 1] === 9)) vb--;
    switch (bit) {
      case AUTHORIZATION: {
        // "Bearer " then 1-512 characters in 0x21-0x7e (the value is trimmed: no blank at either end).
        if (vb - va < 8 || vb - va > 7 + 512 || !bytesAt(buf, va, BEARER)) return undefined;
        for (let x = va + 7; x < vb; x++) if (buf[x] < 0x21 || buf[x] > 0x7e) return undefined;
        token = buf.toString('latin1', va + 7, vb);
        break;
      }
      case CONTENT_TYPE_BIT:
        contentType = buf.toString('latin1', va, vb);
        break;
      case CONTENT_LENGTH: {
        if (vb - va < 1 || vb - va > 9) return undefined;
        let n = 0;
        for (let x = va; x < vb; x++) {
          const d = buf[x] - 48;
          if (d < 0 || d > 9) return undefined;
          n = n * 10 + d;
        }
        length = n;
        break;
      }
      case CONNECTION:
        if (!equalsLower(buf, va, vb, 'keep-alive')) return undefined;
        break;
      default:
    }
    i = k;
  }
  if ((seen & HOST) === 0 || length < 0 || token === undefined) return undefined;
  if (length > maxBody || buf.length < end + 4 + length) return undefined;
  contentType ??= 'application/octet-stream';
  if (!CONTENT_TYPE.test(contentType) || NDJSON.test(contentType)) return undefined;
  return { topic, token, contentType, length, headEnd: end + 4 };
}

export interface FrontServer {
  readonly server: Server;
  close(cb: () => void): void;
  closeAllConnections(): void;
}

/** A net server for the device port: the fast path above, every other connection to `http` (which does not listen itself). */
export function fastIntakeFront(ctx: AgentContext, http: HttpServer, keepAliveMs: number): FrontServer {
  const own = new Set<Socket>();
  const keepAliveS = Math.floor(keepAliveMs / 1000);
  // allowHalfOpen as Node's HTTP server: a client that half-closes after its request still gets the answer.
  const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    own.add(socket);
    let buf: Buffer | undefined;
    let busy = false;
    let ended = false;
    const onTimeout = () => { if (!busy) socket.destroy(); };
    const onError = () => socket.destroy();
    const onClose = () => own.delete(socket);
    const onEnd = () => { ended = true; if (!busy) finish(); };
    const handOff = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('timeout', onTimeout);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.setTimeout(0);
      own.delete(socket);
      socket.pause();
      if (buf && buf.length > 0) socket.unshift(buf);
      buf = undefined;
      // Node's HTTP server reads a fresh socket's handle from C++ (it "consumes" it) and stops
      // it on pause(). On a socket this front has read and unshifted into, the stream reads it
      // again behind that pause, so a handler that pauses to refuse (401, 403, 503 before the
      // body) still had the whole body read into memory: 40 unauthenticated 16 MiB forwards
      // took a relay from 70 to 576 MB. Marked as consumed, the socket stays a plain stream
      // under Node's server, and pause() holds it (+8 MB for the same 40).
      const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
      if (handle) handle._consumed = true;
      http.emit('connection', socket);
      socket.resume();
    };
    /** After the client's end: what is left is answered if plain, else the connection closes (Node cannot take a socket that has ended). */
    const finish = () => {
      if (buf && buf.length > 0) return next();
      socket.end();
    };
    const next = (): void => {
      while (buf && buf.length > 0 && !busy) {
        const p = plainRequest(buf, ctx.limits.maxMessageBytes);
        const tenant = p && tenantForToken(ctx, p.token);
        const topic = p && tenant?.topics.get(p.topic);
        if (!p || !tenant || !topic || !takeToken(tenant)) {
          if (ended) { socket.destroy(); return; }
          return handOff();
        }
        const body = buf.subarray(p.headEnd, p.headEnd + p.length);
        buf = buf.length === p.headEnd + p.length ? undefined : buf.subarray(p.headEnd + p.length);
        busy = true;
        socket.pause();
        // Two callbacks on the commit's promise, no more promises per request: this is the hot path.
        ctx.spool.appendIds(tenant.name, topic.name, [{ contentType: p.contentType, body }], { quotaBytes: tenant.spoolBytes, whenFull: topic.whenFull }).then((ids) => {
          try {
            ctx.notify();
            ctx.stats.response(202);
            answer(socket, keepAliveS, 202, { id: firstId(ids) });
          } finally {
            answered();
          }
        }, (err: unknown) => {
          try {
            const f = storeFailure(ctx, err, 'enqueue'); // the answer Node's handler gives (intake.ts)
            ctx.stats.response(f.status);
            answer(socket, keepAliveS, f.status, { error: f.error, message: f.message }, f.retryAfter);
          } finally {
            answered();
          }
        });
      }
    };
    const answered = () => {
      if (socket.destroyed) return;
      // A client that sends but does not read: no more requests are taken until its answers drain (as Node's server does).
      if (socket.writableNeedDrain) socket.once('drain', proceed);
      else proceed();
    };
    const proceed = () => {
      busy = false;
      if (socket.destroyed) return;
      if (ended) return finish();
      next();
      if (!busy && own.has(socket)) socket.resume();
    };
    const onData = (d: Buffer) => {
      buf = buf ? Buffer.concat([buf, d]) : d;
      if (!busy) next();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    socket.setTimeout(keepAliveMs);
  });
  // Node's HTTP server starts checking its connections' header and request timeouts when it
  // emits 'listening' (it never listens itself here): without it, a slow client handed to it
  // would never time out.
  server.once('listening', () => http.emit('listening'));
  return {
    server,
    close(cb) { server.close(() => cb()); http.close(); },
    closeAllConnections() { for (const s of own) s.destroy(); own.clear(); http.closeAllConnections(); },
  };
}
