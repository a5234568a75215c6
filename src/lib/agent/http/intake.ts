import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentContext } from '../context.js';
import { BodyTooLarge, readBody } from './body.js';
import { fail } from './respond.js';
import { SpoolFullError, SpoolUnavailableError } from '../store/errors.js';

/** What both intakes (device POST /v1/q/… and hop POST /v1/forward) share: auth, body, store errors. */

export function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.authorization ?? '')?.[1];
}

/** How long a refused connection stays open (unread) before it is dropped. */
const LINGER_MS = 1000;

/**
 * Answers a request whose body will not be read, and closes the connection. The body is never
 * read: the socket stops reading now (Node has read at most one chunk ahead of the handler), so
 * what the client still sends waits in the kernel's socket buffer. The connection is shut for
 * writing once the answer is out (the client sees the answer, then the end) but reset only
 * LINGER_MS later ("lingering close", as nginx does): a reset arriving while a proxy in front
 * of the agent is still sending the body would make it answer 502 instead of passing this on.
 */
export function refuse(ctx: AgentContext, req: IncomingMessage, res: ServerResponse, status: number, error: string, message: string, retryAfter?: number): void {
  const socket = req.socket;
  // Node discards an unread body after the answer by reading it to the end, unless the handler
  // reads the body itself: read(0) says it does (and reads nothing), pause() stops the socket.
  req.read(0);
  socket.pause();
  // Node ends a `Connection: close` answer with socket.destroySoon(), which resets a socket
  // with unread bytes at once; without destroySoon it calls socket.end(), the half-close wanted.
  Object.defineProperty(socket, 'destroySoon', { value: undefined, configurable: true });
  res.setHeader('connection', 'close');
  fail(res, ctx.stats, status, error, message, retryAfter);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
}

/**
 * The whole body, or undefined once answered: 413 (then the connection is dropped, so the rest
 * of a huge body is not read) or nothing at all when the client went away. `exact`: see readBody.
 */
export async function readBodyOr413(ctx: AgentContext, req: IncomingMessage, res: ServerResponse, limit: number, what?: string, exact?: number): Promise<Buffer | undefined> {
  try {
    return await readBody(req, limit, exact);
  } catch (err) {
    if (err instanceof BodyTooLarge) refuse(ctx, req, res, 413, 'too_large', what ? `${what} exceeds ${limit} bytes` : err.message);
    return undefined;
  }
}

/** A failed spool write's answer (nothing was stored in every case); an unexpected error is logged. */
export function storeFailure(ctx: AgentContext, err: unknown, what: string): { status: number; error: string; message: string; retryAfter?: number } {
  if (err instanceof SpoolFullError) return { status: 507, error: 'spool_full', message: err.message, retryAfter: 5 };
  if (err instanceof SpoolUnavailableError) return { status: 507, error: 'storage_unavailable', message: 'the spool cannot store messages right now (disk full or I/O error); nothing was stored', retryAfter: 5 };
  ctx.log.error(`${what} failed`, { error: String(err) });
  return { status: 500, error: 'internal', message: 'internal error; nothing was stored' };
}

/** Answers a failed spool write (storeFailure). */
export function storeFailed(ctx: AgentContext, res: ServerResponse, err: unknown, what: string): void {
  const f = storeFailure(ctx, err, what);
  fail(res, ctx.stats, f.status, f.error, f.message, f.retryAfter);
}
