/**
 * One stored message: a small fixed header, the id, the content type, then the body bytes
 * untouched (binary-safe, no base64 on disk).
 *   u8 version | f64 enqueued-at ms | u16 id length | id | u8 ctype length | ctype | body
 */
export interface SpoolMessage {
  id: string;
  tenant: string;
  topic: string;
  contentType: string;
  /** Milliseconds since the epoch when the first hop accepted it (TTL counts from here). */
  ts: number;
  body: Buffer;
}

const VERSION = 1;

export function encodeRecord(id: string, contentType: string, ts: number, body: Buffer): Buffer {
  const idLen = Buffer.byteLength(id, 'latin1');
  const ctLen = Buffer.byteLength(contentType, 'latin1');
  const out = Buffer.allocUnsafe(1 + 8 + 2 + idLen + 1 + ctLen + body.length);
  let o = out.writeUInt8(VERSION, 0);
  o = out.writeDoubleBE(ts, o);
  o = out.writeUInt16BE(idLen, o);
  o += out.write(id, o, 'latin1');
  o = out.writeUInt8(ctLen, o);
  o += out.write(contentType, o, 'latin1');
  body.copy(out, o);
  return out;
}

export function decodeRecord(tenant: string, topic: string, value: Buffer): SpoolMessage {
  if (value.length < 12 || value[0] !== VERSION) throw new Error('spool record has an unknown format');
  let o = 1;
  const ts = value.readDoubleBE(o); o += 8;
  const idLen = value.readUInt16BE(o); o += 2;
  const id = value.toString('latin1', o, o + idLen); o += idLen;
  const ctLen = value.readUInt8(o); o += 1;
  const contentType = value.toString('latin1', o, o + ctLen); o += ctLen;
  if (o > value.length) throw new Error('spool record is truncated');
  return { id, tenant, topic, contentType, ts, body: value.subarray(o) };
}

/** Printable ASCII without spaces: what message ids, content types and idempotency keys may contain. */
export const SAFE_TOKEN = /^[\x21-\x7e]{1,128}$/;
export const MESSAGE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const CONTENT_TYPE = /^[\x20-\x7e]{1,100}$/;
