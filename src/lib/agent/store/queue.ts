import { SpoolCore, type Queue } from './spool.js';
import { messageKey, queueEnd, queueName, seqOfKey } from './keys.js';
import { decodeRecords, encodeChunk, encodeRecord, recordCount, recordTime, type SpoolMessage } from './record.js';
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
}

export interface ReadItem {
  q: Queue;
  /** The key of the record holding the message (the messages of one chunk share it). */
  seq: number;
  /** The record's bytes, on the first message of the record; 0 on the others. */
  size: number;
  msg: SpoolMessage;
}

export interface Batch {
  generation: number;
  items: ReadItem[];
  bytes: number;
}

export interface QueueStatus {
  tenant: string;
  topic: string;
  depth: number;
  bytes: number;
  dropped: number;
  expired: number;
  purged: number;
  corrupt: number;
  oldestAgeSeconds: number | null;
}

const SEEN = Buffer.from('1');
const ID_OVERHEAD = 48;

/** The queue contract on top of SpoolCore: append, dedupe, read from the cursor, ack, drop, purge. */
export class Spool extends SpoolCore {
  node = 'node';
  private idemInflight = new Map<string, Promise<string[]>>();
  private idsInflight = new Set<string>();
  private rr = 0;

  /** Device messages: new ids (node:epoch:seq), all or nothing, resolved once synced. */
  async append(tenant: string, topic: string, msgs: NewMessage[], opts: AppendOptions = {}): Promise<string[]> {
    this.assertOpen();
    if (!opts.idempotencyKey) return this.appendNow(tenant, topic, msgs, opts);
    const ik = `${tenant}\u0000${opts.idempotencyKey}`;
    const running = this.idemInflight.get(ik);
    if (running) return running;
    const p = (async () => {
      const [prev] = await this.idempotency.getMany(this.db, [ik]);
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
    const q = this.queue(tenant, topic);
    let estimate = 0;
    for (const m of msgs) estimate += m.body.length + m.contentType.length + this.node.length + ID_OVERHEAD;
    if (opts.quotaBytes !== undefined) {
      const over = () => (this.tenantBytes.get(tenant) ?? 0) + estimate - opts.quotaBytes!;
      if (over() > 0 && opts.whenFull === 'drop-oldest' && estimate <= opts.quotaBytes) {
        for (let i = 0; i < 5 && over() > 0; i++) if ((await this.removeOldest(q, { bytes: over() }, 'dropped')) === 0) break;
      }
      if (over() > 0) throw new SpoolFullError(`tenant ${tenant} spool quota of ${opts.quotaBytes} bytes is full`);
    }
    this.assertOpen();
    const ts = Date.now();
    const ops: Op[] = [];
    const ids: string[] = [];
    const idPrefix = `${this.node}:${this.epoch}:`;
    let bytes = 0;
    for (let i = 0; i < msgs.length;) {
      // A run of one content type within the chunk limits becomes one record.
      const ctype = msgs[i].contentType;
      let j = i + 1;
      let size = msgs[i].body.length;
      while (j < msgs.length && j - i < this.chunkMessages && msgs[j].contentType === ctype && size + 4 + msgs[j].body.length <= this.chunkBytes) size += 4 + msgs[j++].body.length;
      const first = this.reserveSeqs(j - i);
      const rec = j - i === 1 ? encodeRecord(idPrefix + String(first), ctype, ts, msgs[i].body) : encodeChunk(idPrefix, ctype, ts, msgs.slice(i, j).map((m) => m.body));
      ops.push({ type: 'put', key: messageKey(q.prefix, first), value: rec });
      for (let k = 0; k < j - i; k++) ids.push(idPrefix + String(first + k));
      bytes += rec.length;
      i = j;
    }
    this.addBytes(q, msgs.length, bytes);
    if (ik) this.idempotency.add(ops, ik, Buffer.from(JSON.stringify(ids)));
    await this.commit(ops);
    return ids;
  }

  /** Messages from the previous hop: ids kept, duplicates (by id, bounded window on disk) skipped. */
  async appendForwarded(msgs: SpoolMessage[], quotaOf: (tenant: string) => number | undefined = () => undefined): Promise<{ accepted: number; duplicates: number }> {
    this.assertOpen();
    const seen = new Set<string>();
    const cand: SpoolMessage[] = [];
    for (const m of msgs) {
      if (seen.has(m.id) || this.idsInflight.has(m.id)) continue;
      seen.add(m.id);
      cand.push(m);
    }
    const existing = await this.dedupe.getMany(this.db, cand.map((m) => m.id));
    this.assertOpen();
    const fresh = cand.filter((m, i) => !existing[i] && !this.idsInflight.has(m.id));
    const add = new Map<string, number>();
    for (const m of fresh) add.set(m.tenant, (add.get(m.tenant) ?? 0) + m.body.length + m.id.length + m.contentType.length + 12);
    for (const [tenant, n] of add) {
      const quota = quotaOf(tenant);
      if (quota !== undefined && (this.tenantBytes.get(tenant) ?? 0) + n > quota) throw new SpoolFullError(`tenant ${tenant} spool quota of ${quota} bytes is full`);
    }
    const ops: Op[] = [];
    for (const m of fresh) {
      const q = this.queue(m.tenant, m.topic);
      const rec = encodeRecord(m.id, m.contentType, m.ts, m.body);
      ops.push({ type: 'put', key: messageKey(q.prefix, this.nextSeq()), value: rec });
      this.addBytes(q, 1, rec.length);
      this.dedupe.add(ops, m.id, SEEN);
      this.idsInflight.add(m.id);
    }
    try {
      await this.commit(ops);
    } finally {
      for (const m of fresh) this.idsInflight.delete(m.id);
    }
    return { accepted: fresh.length, duplicates: msgs.length - fresh.length };
  }

  /**
   * Drops the oldest messages: to make room (drop-oldest) or past their TTL. Counted. The cursor
   * moves past them, so an ack of a batch that held them skips them (a hung upstream must not
   * block drop-oldest); a message dropped while already on its way may still arrive.
   */
  async removeOldest(q: Queue, until: { bytes?: number; olderThan?: number }, reason: 'dropped' | 'expired'): Promise<number> {
    const start = () => Math.max(q.c.head, q.dropCursor);
    const from = start();
    const victims: { key: Buffer; seq: number; size: number; count: number }[] = [];
    let freed = 0;
    const it = this.db.iterator({ gte: messageKey(q.prefix, from), lt: queueEnd(q.name) });
    try {
      outer: for (;;) {
        const page = await it.nextv(256);
        if (page.length === 0) break;
        for (const [k, v] of page) {
          if (until.bytes !== undefined && freed >= until.bytes) break outer;
          if (until.olderThan !== undefined && (recordTime(v) ?? 0) >= until.olderThan) break outer;
          victims.push({ key: k, seq: seqOfKey(k), size: v.length, count: recordCount(v) });
          freed += v.length;
        }
        if (victims.length >= 10_000) break;
      }
    } finally {
      await it.close();
    }
    const floor = start();
    const ok = victims.filter((v) => v.seq >= floor);
    if (ok.length === 0 || this.state !== 'open') return 0;
    const ops: Op[] = ok.map((v) => ({ type: 'del', key: v.key }));
    const bytes = ok.reduce((s, v) => s + v.size, 0);
    // A record that claims more messages than the queue holds is corrupt: never count below zero.
    const count = Math.min(q.c.count, ok.reduce((s, v) => s + v.count, 0));
    this.addBytes(q, -count, -bytes);
    q.c[reason] += count;
    const last = ok[ok.length - 1].seq;
    if (floor === q.c.head) q.c.head = last + 1;
    q.dropCursor = last + 1;
    this.deletedSinceCompact += ok.length;
    await this.commit(ops);
    return count;
  }

  /** Up to maxMessages / maxBytes from the queue heads; `priority` tenants first, the rest round-robin. */
  async readBatch(maxMessages: number, maxBytes: number, priority: ReadonlySet<string> = new Set()): Promise<Batch> {
    this.assertOpen();
    const generation = this.generation;
    const all = [...this.queues.values()].filter((q) => q.c.count > 0);
    const rot = this.rr++ % Math.max(1, all.length);
    const rest = all.filter((q) => !priority.has(q.tenant));
    const qs = [...all.filter((q) => priority.has(q.tenant)), ...rest.slice(rot), ...rest.slice(0, rot)];
    const items: ReadItem[] = [];
    let bytes = 0;
    for (const q of qs) {
      if (items.length >= maxMessages || bytes >= maxBytes) break;
      const bad: Op[] = [];
      let badBytes = 0;
      let badCount = 0;
      const it = this.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: queueEnd(q.name) });
      try {
        outer: for (;;) {
          const page = await it.nextv(Math.min(64, maxMessages - items.length));
          if (page.length === 0) break;
          for (const [k, v] of page) {
            // A chunk goes whole: it is deleted whole once the next hop has every message of it.
            if (items.length > 0 && (bytes + v.length > maxBytes || items.length + recordCount(v) > maxMessages)) break outer;
            const seq = seqOfKey(k);
            let msgs: SpoolMessage[];
            try {
              msgs = decodeRecords(q.tenant, q.topic, seq, v);
            } catch {
              // An unreadable record must not block its queue forever: set it aside (kept, counted).
              bad.push({ type: 'put', key: Buffer.concat([Buffer.from('z'), k]), value: v }, { type: 'del', key: k });
              badBytes += v.length;
              badCount += Math.max(1, Math.min(recordCount(v), q.c.count - badCount));
              continue;
            }
            for (let i = 0; i < msgs.length; i++) items.push({ q, seq, size: i === 0 ? v.length : 0, msg: msgs[i] });
            bytes += v.length;
            if (items.length >= maxMessages) break outer;
          }
        }
      } finally {
        await it.close();
      }
      if (bad.length > 0) {
        this.addBytes(q, -badCount, -badBytes);
        q.c.corrupt += badCount;
        this.log.error('unreadable spool records set aside', { tenant: q.tenant, topic: q.topic, records: bad.length / 2, messages: badCount });
        await this.commit(bad);
      }
    }
    return { generation, items, bytes };
  }

  /** The next hop has them: delete, advance the cursors. Stale batches (store reopened) are ignored. */
  async ack(batch: Batch): Promise<void> {
    if (batch.generation !== this.generation || batch.items.length === 0) return;
    const ops: Op[] = [];
    const last = new Map<Queue, number>();
    let prev: ReadItem | undefined;
    for (const it of batch.items) {
      if (it.seq >= it.q.c.head) {
        // The messages of one chunk share their record: one delete.
        if (prev?.q !== it.q || prev.seq !== it.seq) ops.push({ type: 'del', key: messageKey(it.q.prefix, it.seq) });
        this.addBytes(it.q, -1, -it.size);
      }
      last.set(it.q, it.seq);
      prev = it;
    }
    for (const [q, seq] of last) {
      if (seq + 1 > q.c.head) q.c.head = seq + 1;
      q.dirty = true;
    }
    this.deletedSinceCompact += ops.length;
    await this.commit(ops);
  }

  async peek(tenant: string, topic: string, limit: number): Promise<(SpoolMessage & { seq: number })[]> {
    this.assertOpen();
    const q = this.queues.get(queueName(tenant, topic));
    if (!q || q.c.count === 0) return [];
    const out: (SpoolMessage & { seq: number })[] = [];
    for await (const [k, v] of this.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: queueEnd(q.name), limit })) {
      const seq = seqOfKey(k);
      try { decodeRecords(tenant, topic, seq, v).forEach((m, i) => out.push({ ...m, seq: seq + i })); } catch { /* set aside by the forwarder */ }
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }

  /** Removes every message of the matching queues; says what it removed. */
  async purge(tenant?: string, topic?: string): Promise<{ tenant: string; topic: string; count: number; bytes: number }[]> {
    this.assertOpen();
    const removed: { tenant: string; topic: string; count: number; bytes: number }[] = [];
    const ranges: [Buffer, Buffer][] = [];
    for (const q of this.queues.values()) {
      if ((tenant && q.tenant !== tenant) || (topic && q.topic !== topic) || q.c.count === 0) continue;
      removed.push({ tenant: q.tenant, topic: q.topic, count: q.c.count, bytes: q.c.bytes });
      q.c.purged += q.c.count;
      this.addBytes(q, -q.c.count, -q.c.bytes);
      ranges.push([messageKey(q.prefix, q.c.head), messageKey(q.prefix, this.seq)]);
      q.c.head = this.seq;
      q.dropCursor = q.c.head;
    }
    // Cursors move first (durably); keys below a cursor are never read, so a crash before clear() is harmless.
    await this.commit([]);
    for (const [gte, lt] of ranges) await this.db.clear({ gte, lt });
    return removed;
  }

  async status(now = Date.now()): Promise<QueueStatus[]> {
    const out: QueueStatus[] = [];
    for (const q of this.queues.values()) {
      let oldest: number | null = null;
      if (q.c.count > 0 && this.state === 'open') {
        for await (const v of this.db.values({ gte: messageKey(q.prefix, q.c.head), lt: queueEnd(q.name), limit: 1 })) {
          const ts = recordTime(v);
          if (ts !== undefined) oldest = Math.max(0, (now - ts) / 1000);
        }
      }
      const c = q.c;
      out.push({ tenant: q.tenant, topic: q.topic, depth: c.count, bytes: c.bytes, dropped: c.dropped, expired: c.expired, purged: c.purged, corrupt: c.corrupt, oldestAgeSeconds: oldest });
    }
    return out.sort((a, b) => (a.tenant + a.topic).localeCompare(b.tenant + b.topic));
  }
}
