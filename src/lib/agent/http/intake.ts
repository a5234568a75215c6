import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentContext } from '../context.js';
import { BodyTooLarge, readBody } from './body.js';
import { fail } from './respond.js';
import { SpoolFullError, SpoolUnavailableError } from '../store/errors.js';

/** What both intakes (device POST /v1/q/… and hop POST /v1/forward) share: auth, body, store errors. */

export function bearer(req: IncomingMessage): string | undefined {
  return /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.authorization ?? '')?.[1];
}

/**
 * The whole body, or undefined once answered: 413 (then the connection is dropped, so the rest
 * of a huge body is not read) or nothing at all when the client went away.
 */
export async function readBodyOr413(ctx: AgentContext, req: IncomingMessage, res: ServerResponse, limit: number, what?: string): Promise<Buffer | undefined> {
  try {
    return await readBody(req, limit);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      fail(res, ctx.stats, 413, 'too_large', what ? `${what} exceeds ${limit} bytes` : err.message);
      res.once('finish', () => req.destroy());
    }
    return undefined;
  }
}

/** Maps a failed spool write to its answer; nothing was stored in every case. */
export function storeFailed(ctx: AgentContext, res: ServerResponse, err: unknown, what: string): void {
  if (err instanceof SpoolFullError) return fail(res, ctx.stats, 507, 'spool_full', err.message, 5);
  if (err instanceof SpoolUnavailableError) return fail(res, ctx.stats, 507, 'storage_unavailable', 'the spool cannot store messages right now (disk full or I/O error); nothing was stored', 5);
  ctx.log.error(`${what} failed`, { error: String(err) });
  fail(res, ctx.stats, 500, 'internal', 'internal error; nothing was stored');
}
