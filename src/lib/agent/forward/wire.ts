import type { SpoolMessage } from '../store/record.js';
import { CONTENT_TYPE, MESSAGE_ID } from '../store/record.js';
import { RE } from '../../fleet/values.js';

/**
 * The hop-to-hop batch format of POST /v1/forward (Content-Type below): one JSON header listing
 * every message's metadata and body length, then the bodies back to back. Bodies stay binary
 * (no base64) and one JSON.parse covers the whole batch.
 *   u32be header length | {"v":1,"m":[[id,tenant,topic,contentType,ts,bodyLength],...]} | bodies
 */
export const FORWARD_CONTENT_TYPE = 'application/vnd.edgectl.batch';
export const INTERNAL_TENANT = '_agent';

export function encodeBatch(msgs: SpoolMessage[]): Buffer {
  const header = Buffer.from(JSON.stringify({ v: 1, m: msgs.map((m) => [m.id, m.tenant, m.topic, m.contentType, m.ts, m.body.length]) }));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(header.length);
  return Buffer.concat([head, header, ...msgs.map((m) => m.body)]);
}

export class WireError extends Error {}

const tenantOk = (t: unknown) => typeof t === 'string' && (t === INTERNAL_TENANT || RE.dnsLabel.test(t));

/** Parses and validates a forwarded batch; every field is checked (a hop is not trusted blindly). */
export function decodeBatch(buf: Buffer): SpoolMessage[] {
  if (buf.length < 4) throw new WireError('batch is shorter than its header');
  const hl = buf.readUInt32BE(0);
  if (hl > buf.length - 4) throw new WireError('batch header length is past the end of the body');
  let header: { v?: unknown; m?: unknown };
  try {
    header = JSON.parse(buf.toString('utf8', 4, 4 + hl)) as typeof header;
  } catch {
    throw new WireError('batch header is not JSON');
  }
  if (header.v !== 1 || !Array.isArray(header.m)) throw new WireError('batch header has an unknown version');
  const out: SpoolMessage[] = [];
  let o = 4 + hl;
  for (const [i, row] of (header.m as unknown[]).entries()) {
    if (!Array.isArray(row) || row.length !== 6) throw new WireError(`message ${i}: malformed metadata`);
    const [id, tenant, topic, contentType, ts, len] = row as unknown[];
    if (typeof id !== 'string' || !MESSAGE_ID.test(id)) throw new WireError(`message ${i}: bad id`);
    if (!tenantOk(tenant)) throw new WireError(`message ${i}: bad tenant`);
    if (typeof topic !== 'string' || !RE.topic.test(topic)) throw new WireError(`message ${i}: bad topic`);
    if (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType)) throw new WireError(`message ${i}: bad content type`);
    if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new WireError(`message ${i}: bad timestamp`);
    if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || o + len > buf.length) throw new WireError(`message ${i}: bad body length`);
    out.push({ id, tenant: tenant as string, topic, contentType, ts, body: buf.subarray(o, o + len) });
    o += len;
  }
  if (o !== buf.length) throw new WireError('batch has trailing bytes');
  return out;
}
