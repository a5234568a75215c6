import type { SpoolCore } from './core.js';
import type { Retention } from './retention.js';
import { messageKey } from './keys.js';
import { encodeChunk, encodeRecord } from './record.js';
import { SpoolFullError } from './errors.js';
import type { Op } from './window.js';

export interface NewMessage {
  contentType: string;
  body: Buffer;
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

/** Device messages into the store: new ids, chunked records, the tenant quota, idempotency keys. */
export class DeviceAppend {
  private idemInflight = new Map<string, Promise<string[]>>();

  constructor(private readonly core: SpoolCore, private readonly retention: Retention) {}

  /** New ids (node:epoch:seq), all or nothing, resolved once synced. */
  async append(tenant: string, topic: string, msgs: NewMessage[], opts: AppendOptions = {}): Promise<string[]> {
    this.core.assertOpen();
    if (!opts.idempotencyKey) return this.appendNow(tenant, topic, msgs, opts);
    const ik = `${tenant}\u0000${opts.idempotencyKey}`;
    const running = this.idemInflight.get(ik);
    if (running) return running;
    const p = (async () => {
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

  private async appendNow(tenant: string, topic: string, msgs: NewMessage[], opts: AppendOptions, ik?: string): Promise<string[]> {
    const { core } = this;
    const { counters } = core;
    const q = counters.queue(tenant, topic);
    let estimate = 0;
    let bodyBytes = 0;
    for (const m of msgs) { estimate += m.body.length + m.contentType.length + core.node.length + ID_OVERHEAD; bodyBytes += m.body.length; }
    if (opts.quotaBytes !== undefined) {
      const over = () => counters.tenantUsed(tenant) + estimate - opts.quotaBytes!;
      if (over() > 0 && opts.whenFull === 'drop-oldest' && estimate <= opts.quotaBytes) await this.retention.makeRoom([q], over);
      if (over() > 0) throw new SpoolFullError(`tenant ${tenant} spool quota of ${opts.quotaBytes} bytes is full`);
    }
    core.assertOpen();
    const ts = Date.now();
    const ops: Op[] = [];
    const ids: string[] = [];
    const idPrefix = `${core.node}:${core.epoch}:`;
    let bytes = 0;
    for (let i = 0; i < msgs.length;) {
      // A run of one content type within the chunk limits becomes one record.
      const ctype = msgs[i].contentType;
      let j = i + 1;
      let size = msgs[i].body.length;
      while (j < msgs.length && j - i < core.chunkMessages && msgs[j].contentType === ctype && size + 4 + msgs[j].body.length <= core.chunkBytes) size += 4 + msgs[j++].body.length;
      const first = counters.reserveSeqs(j - i);
      const rec = j - i === 1 ? encodeRecord(idPrefix + String(first), ctype, ts, msgs[i].body) : encodeChunk(idPrefix, ctype, ts, msgs.slice(i, j).map((m) => m.body));
      ops.push({ type: 'put', key: messageKey(q.prefix, first), value: rec });
      for (let k = 0; k < j - i; k++) ids.push(idPrefix + String(first + k));
      bytes += rec.length;
      i = j;
    }
    counters.addBytes(q, msgs.length, bytes);
    counters.addIntake(q, msgs.length, bodyBytes);
    if (opts.alsoWrite) ops.push(...opts.alsoWrite);
    if (ik) core.idempotency.add(ops, ik, Buffer.from(JSON.stringify(ids)));
    await core.commit(ops);
    return ids;
  }
}
