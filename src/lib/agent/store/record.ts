/** What the spool stores and hands to the forwarder and sinks: one message. */
export interface SpoolMessage {
  id: string;
  tenant: string;
  topic: string;
  contentType: string;
  /** Milliseconds since the epoch when the first hop accepted it (TTL counts from here). */
  ts: number;
  body: Buffer;
}

const SINGLE = 1;
const CHUNK = 2;
const RUN = 3;

/**
 * One stored message: a small fixed header, the id, the content type, then the body bytes
 * untouched (binary-safe, no base64 on disk).
 *   u8 1 | f64 enqueued-at ms | u16 id length | id | u8 ctype length | ctype | body
 */
export function encodeRecord(id: string, contentType: string, ts: number, body: Buffer): Buffer {
  const idLen = Buffer.byteLength(id, 'latin1');
  const ctLen = Buffer.byteLength(contentType, 'latin1');
  const out = Buffer.allocUnsafe(1 + 8 + 2 + idLen + 1 + ctLen + body.length);
  let o = out.writeUInt8(SINGLE, 0);
  o = out.writeDoubleBE(ts, o);
  o = out.writeUInt16BE(idLen, o);
  o += out.write(id, o, 'latin1');
  o = out.writeUInt8(ctLen, o);
  o += out.write(contentType, o, 'latin1');
  body.copy(out, o);
  return out;
}

/**
 * Several messages of one device batch in one record, stored under the seq of the first: the
 * i-th message has seq first + i and id `<idPrefix><first + i>`. One LevelDB entry instead of
 * hundreds is what makes NDJSON intake fast; a chunk is read, forwarded and deleted whole.
 *   u8 2 | f64 enqueued-at ms | u32 count | u16 id-prefix length | id prefix | u8 ctype length | ctype
 *   | count x (u32 body length | body)
 */
export function encodeChunk(idPrefix: string, contentType: string, ts: number, bodies: Buffer[]): Buffer {
  let size = 0;
  for (const b of bodies) size += 4 + b.length;
  const { out, at } = runHead(CHUNK, { idPrefix, first: 0, count: bodies.length, contentType, ts }, size);
  let o = at;
  for (const b of bodies) {
    o = out.writeUInt32BE(b.length, o);
    o += b.copy(out, o);
  }
  return out;
}

/**
 * The same chunk, with its bodies taken straight from a device's NDJSON request: message i is
 * `body[spans[2i], spans[2i + 1])` for i in [from, to). No Buffer per line on the way.
 *
 * When no gap between two lines is longer than 4 bytes (NDJSON: LF or CRLF), the lines are
 * copied in one piece to the end of the record, then each is moved down in place behind its
 * length: a line gains 4 bytes and its gap loses at most 4, so the length and the move never
 * reach a line not yet moved (a third of the time of a copy per line, 1,000 lines of 64 bytes).
 */
export function encodeChunkSpans(idPrefix: string, contentType: string, ts: number, body: Buffer, spans: Uint32Array, from: number, to: number): Buffer {
  let size = 0;
  let inPlace = true;
  for (let i = from; i < to; i++) {
    size += 4 + spans[2 * i + 1] - spans[2 * i];
    if (i > from) {
      const gap = spans[2 * i] - spans[2 * i - 1];
      if (gap < 0 || gap > 4) inPlace = false;
    }
  }
  const { out, at } = runHead(CHUNK, { idPrefix, first: 0, count: to - from, contentType, ts }, size);
  let o = at;
  if (to > from && inPlace) {
    const rs = spans[2 * from];
    const re = spans[2 * to - 1];
    // Where body[rs] lands: the raw lines end where the record ends.
    const base = at + size - (re - rs) - rs;
    body.copy(out, base + rs, rs, re);
    for (let i = from; i < to; i++) {
      const s = spans[2 * i];
      const e = spans[2 * i + 1];
      o = out.writeUInt32BE(e - s, o);
      if (o !== base + s) out.copyWithin(o, base + s, base + e);
      o += e - s;
    }
    return out;
  }
  for (let i = from; i < to; i++) {
    const s = spans[2 * i];
    const e = spans[2 * i + 1];
    o = out.writeUInt32BE(e - s, o);
    o += body.copy(out, o, s, e);
  }
  return out;
}

/**
 * A chunk as the next hop stores it: the ids keep the first hop's numbers, so the record says
 * where they start. `bodies` is a chunk's body region as is (count x (u32 length | body)).
 *   u8 3 | f64 enqueued-at ms | u32 count | u16 id-prefix length | id prefix | f64 first id number
 *   | u8 ctype length | ctype | bodies
 */
export function encodeRun(run: Run, bodies: Buffer): Buffer {
  const { out, at } = runHead(RUN, run, bodies.length);
  bodies.copy(out, at);
  return out;
}

/** A chunk or run record with its header written and `bodiesSize` bytes left for the bodies. */
function runHead(kind: typeof CHUNK | typeof RUN, run: Run, bodiesSize: number): { out: Buffer; at: number } {
  const pLen = Buffer.byteLength(run.idPrefix, 'latin1');
  const ctLen = Buffer.byteLength(run.contentType, 'latin1');
  const out = Buffer.allocUnsafe(1 + 8 + 4 + 2 + pLen + (kind === RUN ? 8 : 0) + 1 + ctLen + bodiesSize);
  let o = out.writeUInt8(kind, 0);
  o = out.writeDoubleBE(run.ts, o);
  o = out.writeUInt32BE(run.count, o);
  o = out.writeUInt16BE(pLen, o);
  o += out.write(run.idPrefix, o, 'latin1');
  if (kind === RUN) o = out.writeDoubleBE(run.first, o);
  o = out.writeUInt8(ctLen, o);
  o += out.write(run.contentType, o, 'latin1');
  return { out, at: o };
}

/** Consecutive messages sharing everything but their body: message i has id `<idPrefix><first + i>`. */
export interface Run {
  idPrefix: string;
  first: number;
  count: number;
  contentType: string;
  ts: number;
}

/** How many messages a stored record holds (1 for anything that is not a readable chunk header). */
export function recordCount(value: Buffer): number {
  if (value.length < 13 || (value[0] !== CHUNK && value[0] !== RUN)) return 1;
  const n = value.readUInt32BE(9);
  // Each message takes at least its 4-byte length: a larger claim is garbage, counted as one.
  return n >= 1 && n * 4 <= value.length ? n : 1;
}

/** The enqueue time (TTL and oldest-age), at the same offset in every format; undefined when unreadable. */
export function recordTime(value: Buffer): number | undefined {
  return value.length >= 9 ? value.readDoubleBE(1) : undefined;
}

/**
 * The header of a chunk or run record stored under `seq`, and where its bodies start; the
 * bodies are walked (not copied) to be sure they fill the record exactly. Undefined for a
 * single-message record; throws on anything malformed (the caller sets the record aside).
 */
export function readRun(seq: number, value: Buffer): (Run & { bodiesAt: number }) | undefined {
  if (value[0] === SINGLE) return undefined;
  if (value.length < 16 || (value[0] !== CHUNK && value[0] !== RUN)) throw new Error('spool record has an unknown format');
  let o = 1;
  const ts = value.readDoubleBE(o); o += 8;
  const count = value.readUInt32BE(o); o += 4;
  const pLen = value.readUInt16BE(o); o += 2;
  const idPrefix = value.toString('latin1', o, o + pLen); o += pLen;
  let first = seq;
  if (value[0] === RUN) {
    if (o + 8 > value.length) throw new Error('spool record is truncated');
    first = value.readDoubleBE(o); o += 8;
    if (!Number.isSafeInteger(first) || first < 0) throw new Error('spool run has a bad first id');
  }
  if (o >= value.length) throw new Error('spool record is truncated');
  const ctLen = value.readUInt8(o); o += 1;
  const contentType = value.toString('latin1', o, o + ctLen); o += ctLen;
  if (count === 0 || count > value.length) throw new Error('spool chunk has a bad message count');
  if (walkBodies(value, o, value.length, count) !== value.length) throw new Error('spool chunk is truncated or has trailing bytes');
  return { idPrefix, first, count, contentType, ts, bodiesAt: o };
}

/** Walks `count` length-prefixed bodies from `o`; returns where they end, or -1 when they overrun `end`. */
export function walkBodies(buf: Buffer, o: number, end: number, count: number): number {
  for (let i = 0; i < count; i++) {
    if (o + 4 > end) return -1;
    o += 4 + buf.readUInt32BE(o);
    if (o > end) return -1;
  }
  return o;
}

/** The messages of one record stored under `seq`; throws on anything malformed (the caller sets it aside). */
export function decodeRecords(tenant: string, topic: string, seq: number, value: Buffer): SpoolMessage[] {
  const run = readRun(seq, value);
  return run ? decodeRun(tenant, topic, value, run) : [decodeRecord(tenant, topic, value)];
}

/** The messages of a chunk or run record whose header readRun has already checked. */
export function decodeRun(tenant: string, topic: string, value: Buffer, run: Run & { bodiesAt: number }): SpoolMessage[] {
  const out: SpoolMessage[] = [];
  let o = run.bodiesAt;
  for (let i = 0; i < run.count; i++) {
    const len = value.readUInt32BE(o); o += 4;
    out.push({ id: run.idPrefix + String(run.first + i), tenant, topic, contentType: run.contentType, ts: run.ts, body: value.subarray(o, o + len) });
    o += len;
  }
  return out;
}

export function decodeRecord(tenant: string, topic: string, value: Buffer): SpoolMessage {
  if (value.length < 12 || value[0] !== SINGLE) throw new Error('spool record has an unknown format');
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
