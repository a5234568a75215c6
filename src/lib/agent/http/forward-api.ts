import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentContext } from '../context.js';
import { bearer, readBodyOr413, refuse, storeFailed } from './intake.js';
import { fail, send } from './respond.js';
import { decodeBatch, FORWARD_CONTENT_TYPE, INTERNAL_FORWARD_QUOTA, INTERNAL_TENANT, WireError } from '../forward/wire.js';
import { refusal, senderFor } from './forward-auth.js';

/**
 * POST /v1/forward: a batch from the previous hop. Everything that can be decided from the
 * headers is decided before one byte of the body is read: who sends it (401/403), its length
 * (411/413) and whether this hop has room to hold it (503); every refusal drops the connection.
 * Duplicates (by id, per sender) are skipped; 200 only once synced.
 */
export async function handleForward(ctx: AgentContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const st = ctx.stats;
  const credential = bearer(req);
  if (!credential) return refuse(ctx, req, res, 401, 'unauthorized', 'forwarding requires Authorization: Bearer <node credential>');
  const sender = senderFor(ctx, credential);
  if (!sender) return refuse(ctx, req, res, 403, 'forbidden', 'credential not accepted for forwarding here');
  if (!(req.headers['content-type'] ?? '').startsWith(FORWARD_CONTENT_TYPE)) return refuse(ctx, req, res, 415, 'unsupported_media_type', `Content-Type must be ${FORWARD_CONTENT_TYPE}`);
  const length = /^\d{1,12}$/.test(req.headers['content-length'] ?? '') ? Number(req.headers['content-length']) : undefined;
  if (length === undefined) return refuse(ctx, req, res, 411, 'length_required', 'a forwarded batch needs a Content-Length');
  const budget = ctx.forwardBudget;
  if (length > ctx.limits.maxForwardBytes) return refuse(ctx, req, res, 413, 'too_large', `batch of ${length} bytes exceeds ${ctx.limits.maxForwardBytes}`);
  if (!budget.take(length)) return refuse(ctx, req, res, 503, 'busy', 'this hop holds as many forwarded bytes as it may; retry later', 1);
  try {
    const body = await readBodyOr413(ctx, req, res, length, undefined, length);
    if (!body) return;
    let msgs;
    try {
      msgs = decodeBatch(body);
    } catch (err) {
      if (err instanceof WireError) return fail(res, st, 400, 'malformed_batch', err.message);
      throw err;
    }
    const no = refusal(ctx, sender, msgs);
    if (no) {
      ctx.log.warn('forwarded batch refused', { from: sender.node, error: no.error, message: no.message });
      return fail(res, st, 403, no.error, no.message);
    }
    try {
      const r = await ctx.spool.appendForwarded(msgs, {
        sender: sender.node,
        quotaOf: (t) => (t === INTERNAL_TENANT ? INTERNAL_FORWARD_QUOTA : ctx.tenants.get(t)?.spoolBytes),
        dropOldest: (t) => t === INTERNAL_TENANT,
      });
      st.receivedForwarded += r.accepted;
      st.duplicatesDropped += r.duplicates;
      ctx.notify();
      send(res, st, 200, r);
    } catch (err) {
      storeFailed(ctx, res, err, 'forward intake');
    }
  } finally {
    budget.give(length);
  }
}
