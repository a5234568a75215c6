import type { SpoolCore } from './core.js';
import type { Retention } from './retention.js';
import { messageKey } from './keys.js';
import { encodeChunk, encodeChunkSpans, encodeRecord } from './record.js';
import { SpoolFullError } from './errors.js';
import type { Op } from './window.js';
import type { QueueState } from './counters.js';

export interface NewMessage {
  contentType: string;
  body: Buffer;
}

/** A device's NDJSON batch as it came: message i is `body[spans[2i], spans[2i + 1])`, all of one content type. */
export interface LineBatch {
  contentType: string;
  body: Buffer;
  spans: Uint32Array;
}

/** The messages of one append, whichever way they came: an array, or spans of one NDJSON request. */
interface MessageView {
  count: number;
  len(k: number): number;
  ctype(k: number): string;
  body(k: number): Buffer;
  /** Messages [i, j) as one chunk record. */
  chunk(idPrefix: string, ctype: string, ts: number, i: number, j: number): Buffer;
}

function viewOf(msgs: NewMessage[] | LineBatch): MessageView {
  if (Array.isArray(msgs)) {
    return {
      count: msgs.length,
      len: (k) => msgs[k].body.length,
      ctype: (k) => msgs[k].contentType,
      body: (k) => msgs[k].body,
      chunk: (idPrefix, ctype, ts, i, j) => encodeChunk(idPrefix, ctype, ts, msgs.slice(i, j).map((m) => m.body)),
    };
  }
  const { spans, body, contentType } = msgs;
  return {
    count: spans.length >> 1,
    len: (k) => spans[2 * k + 1] - spans[2 * k],
    ctype: () => contentType,
    body: (k) => body.subarray(spans[2 * k], spans[2 * k + 1]),
    chunk: (idPrefix, ctype, ts, i, j) => encodeChunkSpans(idPrefix, ctype, ts, body, spans, i, j),
  };
}

export interface AppendOptions {
  /** The tenant's spool quota in bytes (all its topics). */
  quotaBytes?: number;
  whenFull?: 'reject' | 'drop-oldest';
  idempotencyKey?: string;
  /** More writes for the same synced batch (metering's offset and state beside its usage messages). */
  alsoWrite?: Op[];
}

const ID_OVERHEAD = 48;

/**
 * The ids one append gave: `<prefix><first>` … `<prefix><first + count - 1>` (the seqs of one
 * append are consecutive), or the list stored for an idempotency key that was seen before.
 */
export type AppendedIds = { prefix: string; first: number; count: number } | string[];

/** The ids as strings. */
export function idList(a: AppendedIds): string[] {
  if (Array.isArray(a)) return a;
  const ids = new Array<string>(a.count);
  for (let k = 0; k < a.count; k++) ids[k] = a.prefix + String(a.first + k);
  return ids;
}

/** The first id of an append. */
export function firstId(a: AppendedIds): string {
  return Array.isArray(a) ? a[0] : a.prefix + String(a.first);
}

/** Device messages into the store: new ids, chunked records, the tenant quota, idempotency keys. */
export class DeviceAppend {
  private idemInflight = new Map<string, Promise<AppendedIds>>();

  constructor(private readonly core: SpoolCore, private readonly retention: Retention) {}

  /** New ids (node:epoch:seq), all or nothing, resolved once synced. */
  async append(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts: AppendOptions = {}): Promise<string[]> {
    return idList(await this.appendIds(tenant, topic, msgs, opts));
  }

  /**
   * As append, with the ids as a range (an NDJSON answer is written from it without a string per
   * id). Without an idempotency key and with room in the quota, the only promise on the way is the
   * group commit's (this runs for every device request).
   */
  appendIds(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts: AppendOptions = {}): Promise<AppendedIds> {
    try {
      this.core.assertOpen();
      if (!opts.idempotencyKey) return this.appendNow(tenant, topic, msgs, opts);
    } catch (err) {
      // Whatever goes wrong is the promise's rejection, as from an async function.
      return Promise.reject(err);
    }
    return this.appendOnce(tenant, topic, msgs, opts, opts.idempotencyKey);
  }

  /** An append under an idempotency key: a key seen before gets the ids it got then. */
  private async appendOnce(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts: AppendOptions, key: string): Promise<AppendedIds> {
    const ik = `${tenant}\u0000${key}`;
    const running = this.idemInflight.get(ik);
    if (running) return running;
    const p = (async (): Promise<AppendedIds> => {
      const [prev] = await this.core.idempotency.getMany(this.core.db, [ik]);
      if (prev) return JSON.parse(prev.toString()) as string[];
      return this.appendNow(tenant, topic, msgs, opts, ik);
    })();
    this.idemInflight.set(ik, p);
    try {
      return await p;
    } finally {
      this.idemInflight.delete(ik);
    }
  }

  private appendNow(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts: AppendOptions, ik?: string): Promise<AppendedIds> {
    const { core } = this;
    const { counters } = core;
    const q = counters.queue(tenant, topic);
    const m = viewOf(msgs);
    const count = m.count;
    let estimate = 0;
    let bodyBytes = 0;
    for (let k = 0; k < count; k++) { const n = m.len(k); estimate += n + m.ctype(k).length + core.node.length + ID_OVERHEAD; bodyBytes += n; }
    if (opts.quotaBytes !== undefined) {
      const quota = opts.quotaBytes;
      const over = () => counters.tenantUsed(tenant) + estimate - quota;
      if (over() > 0) {
        if (opts.whenFull !== 'drop-oldest' || estimate > quota) return Promise.reject(new SpoolFullError(`tenant ${tenant} spool quota of ${quota} bytes is full`));
        return this.retention.makeRoom([q], over).then(() => {
          if (over() > 0) throw new SpoolFullError(`tenant ${tenant} spool quota of ${quota} bytes is full`);
          return this.store(q, m, bodyBytes, opts, ik);
        });
      }
    }
    return this.store(q, m, bodyBytes, opts, ik);
  }

  /** New seqs, the records and counters for them, into the next synced batch (throws if the store is not open: nothing counted). */
  private store(q: QueueState, m: MessageView, bodyBytes: number, opts: AppendOptions, ik?: string): Promise<AppendedIds> {
    const { core } = this;
    const { counters } = core;
    // Checked again here: the quota's room or an idempotency lookup may have waited for the store.
    core.assertOpen();
    const count = m.count;
    const ts = Date.now();
    const ops: Op[] = [];
    const idPrefix = `${core.node}:${core.epoch}:`;
    // One range of seqs for the whole append: message k has seq first0 + k.
    const first0 = counters.reserveSeqs(count);
    let bytes = 0;
    for (let i = 0; i < count;) {
      // A run of one content type within the chunk limits becomes one record.
      const ctype = m.ctype(i);
      let j = i + 1;
      let size = m.len(i);
      while (j < count && j - i < core.chunkMessages && m.ctype(j) === ctype && size + 4 + m.len(j) <= core.chunkBytes) size += 4 + m.len(j++);
      const first = first0 + i;
      const rec = j - i === 1 ? encodeRecord(idPrefix + String(first), ctype, ts, m.body(i)) : m.chunk(idPrefix, ctype, ts, i, j);
      ops.push({ type: 'put', key: messageKey(q.prefix, first), value: rec });
      bytes += rec.length;
      i = j;
    }
    counters.addBytes(q, count, bytes);
    counters.addIntake(q, count, bodyBytes);
    if (opts.alsoWrite) ops.push(...opts.alsoWrite);
    const ids: AppendedIds = { prefix: idPrefix, first: first0, count };
    if (ik) core.idempotency.add(ops, ik, Buffer.from(JSON.stringify(idList(ids))));
    return core.commit(ops).then(() => ids);
  }
}
