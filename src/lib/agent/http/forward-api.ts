import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AgentContext, sha256hex } from '../context.js';
import { BodyTooLarge, readBody } from './body.js';
import { fail, send } from './respond.js';
import { decodeBatch, FORWARD_CONTENT_TYPE, WireError } from '../forward/wire.js';
import { SpoolFullError, SpoolUnavailableError } from '../store/errors.js';

/** POST /v1/forward: a batch from the previous hop. Duplicates (by id) are skipped; 200 only once synced. */
export async function handleForward(ctx: AgentContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const st = ctx.stats;
  if (ctx.acceptForward.size > 0) {
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.headers.authorization ?? '');
    if (!m) return fail(res, st, 401, 'unauthorized', 'forwarding requires Authorization: Bearer <node credential>');
    if (!ctx.acceptForward.has(sha256hex(m[1]))) return fail(res, st, 403, 'forbidden', 'credential not accepted for forwarding');
  }
  if (!(req.headers['content-type'] ?? '').startsWith(FORWARD_CONTENT_TYPE)) return fail(res, st, 415, 'unsupported_media_type', `Content-Type must be ${FORWARD_CONTENT_TYPE}`);
  let body: Buffer;
  try {
    body = await readBody(req, ctx.limits.maxForwardBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      fail(res, st, 413, 'too_large', err.message);
      res.once('finish', () => req.destroy());
    }
    return;
  }
  let msgs;
  try {
    msgs = decodeBatch(body);
  } catch (err) {
    if (err instanceof WireError) return fail(res, st, 400, 'malformed_batch', err.message);
    throw err;
  }
  try {
    const r = await ctx.spool.appendForwarded(msgs, (t) => ctx.tenants.get(t)?.spoolBytes);
    st.receivedForwarded += r.accepted;
    st.duplicatesDropped += r.duplicates;
    ctx.notify();
    send(res, st, 200, r);
  } catch (err) {
    if (err instanceof SpoolFullError) return fail(res, st, 507, 'spool_full', err.message, 5);
    if (err instanceof SpoolUnavailableError) return fail(res, st, 507, 'storage_unavailable', 'the spool cannot store messages right now; nothing was stored', 5);
    ctx.log.error('forward intake failed', { error: String(err) });
    return fail(res, st, 500, 'internal', 'internal error; nothing was stored');
  }
}
