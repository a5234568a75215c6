import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AgentContext, sha256hex } from '../context.js';
import { bearer, readBodyOr413, storeFailed } from './intake.js';
import { fail, send } from './respond.js';
import { decodeBatch, FORWARD_CONTENT_TYPE, WireError } from '../forward/wire.js';

/** POST /v1/forward: a batch from the previous hop. Duplicates (by id) are skipped; 200 only once synced. */
export async function handleForward(ctx: AgentContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const st = ctx.stats;
  if (ctx.acceptForward.size > 0) {
    const credential = bearer(req);
    if (!credential) return fail(res, st, 401, 'unauthorized', 'forwarding requires Authorization: Bearer <node credential>');
    if (!ctx.acceptForward.has(sha256hex(credential))) return fail(res, st, 403, 'forbidden', 'credential not accepted for forwarding');
  }
  if (!(req.headers['content-type'] ?? '').startsWith(FORWARD_CONTENT_TYPE)) return fail(res, st, 415, 'unsupported_media_type', `Content-Type must be ${FORWARD_CONTENT_TYPE}`);
  const body = await readBodyOr413(ctx, req, res, ctx.limits.maxForwardBytes);
  if (!body) return;
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
    storeFailed(ctx, res, err, 'forward intake');
  }
}
