import type { SpoolMessage } from '../store/record.js';
import { CONTENT_TYPE, MESSAGE_ID, decodeRecord, walkBodies } from '../store/record.js';
import type { IncomingItem, IncomingRun, ReadRecord } from '../store/spool.js';
import { RE } from '../../fleet/values.js';

/**
 * The hop-to-hop batch format of POST /v1/forward (Content-Type below): one JSON header listing
 * each item's metadata and byte length, then the items' bytes back to back. Bodies stay binary
 * (no base64) and one JSON.parse covers the whole batch. An item is one message, or a run: the
 * messages of one stored chunk, sent as the chunk holds them (count x (u32 length | body)), so
 * no hop decodes or re-encodes them one by one.
 *   u32be header length | {"v":2,"m":[row,...]} | bytes
 *   message row: [id, tenant, topic, contentType, ts, bodyLength]
 *   run row:     [idPrefix, firstIdNumber, count, tenant, topic, contentType, ts, bytesLength]
 * Version 1 (message rows only) is still accepted.
 */
export const FORWARD_CONTENT_TYPE = 'application/vnd.edgectl.batch';
export const INTERNAL_TENANT = '_agent';
/** The agents' own heartbeats: the one topic of INTERNAL_TENANT. */
export const HEARTBEAT_TOPIC = 'heartbeat';
/** What a hop keeps of other agents' heartbeats while its upstream is away (the oldest make room). */
export const INTERNAL_FORWARD_QUOTA = 64 << 20;

const isRun = (x: IncomingItem): x is IncomingRun => 'bodies' in x;

export function encodeBatch(items: IncomingItem[]): Buffer {
  const rows = items.map((m) => (isRun(m)
    ? [m.idPrefix, m.first, m.count, m.tenant, m.topic, m.contentType, m.ts, m.bodies.length]
    : [m.id, m.tenant, m.topic, m.contentType, m.ts, m.body.length]));
  const header = Buffer.from(JSON.stringify({ v: 2, m: rows }));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(header.length);
  return Buffer.concat([head, header, ...items.map((m) => (isRun(m) ? m.bodies : m.body))]);
}

/** Stored records as wire items: chunks and runs as runs (their bytes as stored), single records as messages. */
export function wireItems(records: ReadRecord[]): IncomingItem[] {
  return records.map((r) => (r.run
    ? { ...r.run, tenant: r.q.tenant, topic: r.q.topic, bodies: r.value.subarray(r.run.bodiesAt) }
    : decodeRecord(r.q.tenant, r.q.topic, r.value)));
}

export class WireError extends Error {}

const tenantOk = (t: unknown) => typeof t === 'string' && (t === INTERNAL_TENANT || RE.dnsLabel.test(t));
const ID_PREFIX = /^[A-Za-z0-9._:-]{1,100}$/;
const MAX_RUN = 100_000;

/** Parses and validates a forwarded batch; every field is checked (a hop is not trusted blindly). */
export function decodeBatch(buf: Buffer): IncomingItem[] {
  if (buf.length < 4) throw new WireError('batch is shorter than its header');
  const hl = buf.readUInt32BE(0);
  if (hl > buf.length - 4) throw new WireError('batch header length is past the end of the body');
  let header: { v?: unknown; m?: unknown };
  try {
    header = JSON.parse(buf.toString('utf8', 4, 4 + hl)) as typeof header;
  } catch {
    throw new WireError('batch header is not JSON');
  }
  if ((header.v !== 1 && header.v !== 2) || !Array.isArray(header.m)) throw new WireError('batch header has an unknown version');
  const out: IncomingItem[] = [];
  let o = 4 + hl;
  for (const [i, row] of (header.m as unknown[]).entries()) {
    const run = header.v === 2 && Array.isArray(row) && row.length === 8;
    if (!Array.isArray(row) || !(row.length === 6 || run)) throw new WireError(`message ${i}: malformed metadata`);
    const [tenant, topic, contentType, ts, len] = row.slice(run ? 3 : 1) as unknown[];
    if (!tenantOk(tenant)) throw new WireError(`message ${i}: bad tenant`);
    if (typeof topic !== 'string' || !RE.topic.test(topic)) throw new WireError(`message ${i}: bad topic`);
    if (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType)) throw new WireError(`message ${i}: bad content type`);
    if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new WireError(`message ${i}: bad timestamp`);
    if (typeof len !== 'number' || !Number.isInteger(len) || len < 0 || o + len > buf.length) throw new WireError(`message ${i}: bad body length`);
    if (run) {
      const [idPrefix, first, count] = row as unknown[];
      if (typeof idPrefix !== 'string' || !ID_PREFIX.test(idPrefix)) throw new WireError(`run ${i}: bad id prefix`);
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_RUN) throw new WireError(`run ${i}: bad count`);
      if (typeof first !== 'number' || !Number.isSafeInteger(first) || first < 0 || !Number.isSafeInteger(first + count)) throw new WireError(`run ${i}: bad first id`);
      if (!MESSAGE_ID.test(idPrefix + String(first + count - 1))) throw new WireError(`run ${i}: ids would be too long`);
      if (walkBodies(buf, o, o + len, count) !== o + len) throw new WireError(`run ${i}: its bodies do not fill its ${len} bytes`);
      out.push({ idPrefix, first, count, tenant: tenant as string, topic, contentType, ts, bodies: buf.subarray(o, o + len) });
    } else {
      const id = row[0] as unknown;
      if (typeof id !== 'string' || !MESSAGE_ID.test(id)) throw new WireError(`message ${i}: bad id`);
      out.push({ id, tenant: tenant as string, topic, contentType, ts, body: buf.subarray(o, o + len) } satisfies SpoolMessage);
    }
    o += len;
  }
  if (o !== buf.length) throw new WireError('batch has trailing bytes');
  return out;
}
