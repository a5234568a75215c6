import { createServer, type Server, type Socket } from 'node:net';
import { STATUS_CODES, type Server as HttpServer } from 'node:http';
import type { AgentContext } from '../context.js';
import { takeToken, tenantForToken } from '../context.js';
import { RE } from '../../fleet/values.js';
import { CONTENT_TYPE } from '../store/record.js';
import { storeFailure } from './intake.js';

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
const MAX_HEADERS = 64;
const REQUEST_LINE = /^POST \/v1\/q\/([^ ]*) HTTP\/1\.1$/;
const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE = /^[\x20-\x7e\t]*$/;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;
const NDJSON = /^application\/(x-)?ndjson\b/i;
/** Headers the fast path reads or may ignore (the device handler ignores them too: fetch sends the last four); any other sends the request to Node. */
const PLAIN = new Set(['host', 'authorization', 'content-type', 'content-length', 'connection', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'sec-fetch-mode']);

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

/** The request at the start of `buf` if it is whole and of the plainest shape, else undefined (Node takes it). */
function plainRequest(buf: Buffer, maxBody: number): Plain | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1 || end > MAX_HEAD) return undefined;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const rl = REQUEST_LINE.exec(lines[0]);
  if (!rl || !RE.topic.test(rl[1]) || lines.length - 1 > MAX_HEADERS) return undefined;
  const seen = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0 || !NAME.test(line.slice(0, colon))) return undefined;
    const raw = line.slice(colon + 1);
    if (!VALUE.test(raw)) return undefined;
    const name = line.slice(0, colon).toLowerCase();
    if (!PLAIN.has(name) || seen.has(name)) return undefined;
    seen.set(name, trimOws(raw));
  }
  if (!seen.has('host')) return undefined;
  const conn = seen.get('connection');
  if (conn !== undefined && conn.toLowerCase() !== 'keep-alive') return undefined;
  const cl = seen.get('content-length');
  if (cl === undefined || !/^\d{1,9}$/.test(cl)) return undefined;
  const length = Number(cl);
  if (length > maxBody || buf.length < end + 4 + length) return undefined;
  const token = BEARER.exec(seen.get('authorization') ?? '')?.[1];
  const contentType = seen.get('content-type') ?? 'application/octet-stream';
  if (!token || !CONTENT_TYPE.test(contentType) || NDJSON.test(contentType)) return undefined;
  return { topic: rl[1], token, contentType, length, headEnd: end + 4 };
}

/** Spaces and tabs off both ends (a loop: a regex here could take quadratic time on a long run of blanks). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return s.slice(a, b);
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
        ctx.spool.append(tenant.name, topic.name, [{ contentType: p.contentType, body }], { quotaBytes: tenant.spoolBytes, whenFull: topic.whenFull }).then((ids) => {
          ctx.notify();
          ctx.stats.response(202);
          answer(socket, keepAliveS, 202, { id: ids[0] });
        }, (err: unknown) => {
          const f = storeFailure(ctx, err, 'enqueue'); // the answer Node's handler gives (intake.ts)
          ctx.stats.response(f.status);
          answer(socket, keepAliveS, f.status, { error: f.error, message: f.message }, f.retryAfter);
        }).finally(() => {
          if (socket.destroyed) return;
          // A client that sends but does not read: no more requests are taken until its answers drain (as Node's server does).
          if (socket.writableNeedDrain) socket.once('drain', proceed);
          else proceed();
        });
      }
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
