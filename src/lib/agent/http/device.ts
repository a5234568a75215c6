import type { IncomingMessage, ServerResponse } from 'node:http';
import { RE } from '../../fleet/values.js';
import { type AgentContext, takeToken, tenantForToken } from '../context.js';
import { bearer, readBodyOr413, storeFailed } from './intake.js';
import { fail, send, sendJson } from './respond.js';
import { isJsonText } from './json-check.js';
import { CONTENT_TYPE, SAFE_TOKEN } from '../store/record.js';
import { type AppendedIds, firstId, idList, type LineBatch, type NewMessage } from '../store/spool.js';
import { now, record, tracing } from '../store/trace.js';

const NDJSON = /^application\/(x-)?ndjson\b/i;

/** POST /v1/q/{topic}: one message (any content type) or an NDJSON batch, acknowledged once synced. */
export async function handleEnqueue(ctx: AgentContext, req: IncomingMessage, res: ServerResponse, rawTopic: string): Promise<void> {
  const st = ctx.stats;
  const t0 = tracing ? now() : 0;
  const token = bearer(req);
  if (!token) return fail(res, st, 401, 'unauthorized', 'Authorization: Bearer <token> is required');
  const tenant = tenantForToken(ctx, token);
  if (!tenant) return fail(res, st, 401, 'unauthorized', 'token not recognised');
  if (!RE.topic.test(rawTopic)) return fail(res, st, 400, 'invalid_topic', 'topic must be a plain name: a-z 0-9 _ - (max 63)');
  const topic = tenant.topics.get(rawTopic);
  if (!topic) return fail(res, st, 403, 'topic_not_allowed', `topic ${rawTopic} is not declared for tenant ${tenant.name}`);
  if (!takeToken(tenant)) return fail(res, st, 429, 'rate_limited', `tenant ${tenant.name} exceeds its request rate`, 1);
  const idem = req.headers['idempotency-key'];
  if (idem !== undefined && (typeof idem !== 'string' || !SAFE_TOKEN.test(idem))) return fail(res, st, 400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-128 printable ASCII characters');
  const ctype = (req.headers['content-type'] ?? 'application/octet-stream').trim();
  if (!CONTENT_TYPE.test(ctype)) return fail(res, st, 400, 'invalid_content_type', 'Content-Type must be printable ASCII (max 100)');
  const batch = NDJSON.test(ctype);
  const limit = batch ? ctx.limits.maxBatchBytes : ctx.limits.maxMessageBytes;
  const body = await readBodyOr413(ctx, req, res, limit, batch ? 'batch' : 'message');
  if (!body) return;
  const t1 = tracing ? now() : 0;
  let msgs: NewMessage[] | LineBatch;
  if (batch) {
    const spans = ndjsonSpans(body, ctx.limits.maxMessageBytes, ctx.limits.maxBatchMessages);
    if (typeof spans === 'string') return fail(res, st, spans.startsWith('too') ? 413 : 400, spans.startsWith('too') ? 'too_large' : 'malformed_batch', spans);
    msgs = { contentType: 'application/json', body, spans };
  } else {
    msgs = [{ contentType: ctype, body }];
  }
  try {
    const ids = await ctx.spool.appendIds(tenant.name, topic.name, msgs, { quotaBytes: tenant.spoolBytes, whenFull: topic.whenFull, idempotencyKey: idem });
    const t2 = tracing ? now() : 0;
    ctx.notify();
    if (batch) sendJson(res, st, 202, idsAnswer(ids));
    else send(res, st, 202, { id: firstId(ids) });
    if (tracing) {
      const t3 = now();
      record('http: handler entry to body read', t1 - t0);
      record('http: body read to stored and synced', t2 - t1);
      record('http: synced to res.end returned', t3 - t2);
      record('http: handler entry to res.end returned', t3 - t0);
      res.once('finish', () => record('http: res.end to finish', now() - t3));
    }
  } catch (err) {
    storeFailed(ctx, res, err, 'enqueue');
  }
}

/**
 * Each non-empty line must be one JSON text in UTF-8; any bad line rejects the whole batch (nothing
 * stored). Returns where each message is in `body` (start, end pairs; a line's CR is not part of it).
 */
export function ndjsonSpans(body: Buffer, maxLine: number, maxLines: number): Uint32Array | string {
  let spans = new Uint32Array(2 * Math.min(maxLines, 1024));
  let n = 0;
  let start = 0;
  let line = 0;
  while (start < body.length) {
    let end = body.indexOf(10, start);
    if (end === -1) end = body.length;
    line++;
    let stop = end;
    if (stop > start && body[stop - 1] === 13) stop--;
    if (stop > start) {
      if (stop - start > maxLine) return `too large: line ${line} exceeds ${maxLine} bytes`;
      if (n >= maxLines) return `too many messages: more than ${maxLines} lines`;
      if (!isJsonText(body, start, stop)) return `line ${line} is not valid JSON (or not UTF-8); nothing was stored`;
      if (2 * n + 2 > spans.length) { const more = new Uint32Array(Math.min(2 * spans.length, 2 * maxLines)); more.set(spans); spans = more; }
      spans[2 * n] = start;
      spans[2 * n + 1] = stop;
      n++;
    } else if (end < body.length) {
      return `line ${line} is empty; nothing was stored`;
    }
    start = end + 1;
  }
  if (n === 0) return 'batch is empty';
  return spans.subarray(0, 2 * n);
}

/** What an id prefix (`<node>:<epoch>:`) may hold for the answer to be written without escaping. */
const PLAIN_PREFIX = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * `{"ids":[…]}` for an NDJSON batch: the same text JSON.stringify gives, written as ASCII into a
 * scratch buffer kept for it and read out as one string (concatenating a string per id was a
 * twentieth of the intake's time for 1,000 ids; a new Buffer per answer, as external memory,
 * cost more in garbage collection than it saved once the spool held a backlog). The number is
 * kept as digits and counted up in place. A prefix with anything JSON would escape, or a stored
 * list, goes through JSON.stringify.
 */
export function idsAnswer(a: AppendedIds): string {
  if (Array.isArray(a) || a.count === 0 || !PLAIN_PREFIX.test(a.prefix)) return JSON.stringify({ ids: idList(a) });
  const prefix = Buffer.from(a.prefix, 'latin1');
  const first = String(a.first);
  const most = String(a.first + a.count - 1).length;
  const need = OPEN.length + a.count * (prefix.length + most + 3) + CLOSE.length;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, 2 * scratch.length));
  const out = scratch;
  // The current number's digits, right-aligned in `digits`; `from` is its first digit.
  const digits = Buffer.alloc(most, 0x30);
  digits.write(first, most - first.length, 'latin1');
  let from = most - first.length;
  let o = OPEN.copy(out, 0);
  for (let k = 0; k < a.count; k++) {
    if (k > 0) {
      out[o++] = 0x2c; // ,
      let d = most - 1;
      while (digits[d] === 0x39) digits[d--] = 0x30;
      digits[d]++;
      if (d < from) from = d;
    }
    out[o++] = 0x22;
    for (let i = 0; i < prefix.length; i++) out[o++] = prefix[i];
    for (let i = from; i < most; i++) out[o++] = digits[i];
    out[o++] = 0x22;
  }
  o += CLOSE.copy(out, o);
  return out.toString('latin1', 0, o);
}

let scratch = Buffer.allocUnsafe(64 * 1024);

const OPEN = Buffer.from('{"ids":[', 'latin1');
const CLOSE = Buffer.from(']}', 'latin1');
