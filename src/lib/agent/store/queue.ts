import { SpoolCore, type Queue } from './spool.js';
import { messageKey, queueEnd, queueName, seqOfKey } from './keys.js';
import { decodeRecord, decodeRecords, decodeRun, encodeChunk, encodeRecord, encodeRun, readRun, recordCount, recordTime, type Run, type SpoolMessage } from './record.js';
import { SpoolFullError } from './errors.js';
import { closeIterator } from './iter.js';
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

/** One stored record as read: a single message, or a chunk / run of `count` messages. */
export interface ReadRecord {
  q: Queue;
  seq: number;
  value: Buffer;
  count: number;
  /** A chunk's or run's header (checked when read); undefined for a single message. */
  run?: Run & { bodiesAt: number };
}

/** What the forwarder hands on: whole records, decoded into messages only where a sink needs them. */
export class Batch {
  constructor(readonly generation: number, readonly records: ReadRecord[], readonly count: number, readonly bytes: number) {}

  messages(): SpoolMessage[] {
    const out: SpoolMessage[] = [];
    for (const r of this.records) {
      if (r.run) for (const m of decodeRun(r.q.tenant, r.q.topic, r.value, r.run)) out.push(m);
      else out.push(decodeRecord(r.q.tenant, r.q.topic, r.value));
    }
    return out;
  }
}

/** A run as it arrives from the previous hop (see forward/wire.ts): its bodies region as is. */
export interface IncomingRun extends Run {
  tenant: string;
  topic: string;
  bodies: Buffer;
}

export type IncomingItem = SpoolMessage | IncomingRun;

const isRun = (x: IncomingItem): x is IncomingRun => 'bodies' in x;

/** What forwarded items will take on disk, per tenant (as the quota counts it). */
function bytesByTenant(items: IncomingItem[]): Map<string, number> {
  const add = new Map<string, number>();
  for (const m of items) {
    const size = isRun(m) ? m.bodies.length + m.idPrefix.length + 32 : m.body.length + m.id.length + 12;
    add.set(m.tenant, (add.get(m.tenant) ?? 0) + size + m.contentType.length);
  }
  return add;
}

export interface ForwardedOptions {
  /** The authenticated previous hop: part of every dedupe key. */
  sender?: string;
  /** A tenant's quota in bytes; undefined: none. */
  quotaOf?: (tenant: string) => number | undefined;
  /** Tenants whose oldest messages make room for new ones instead of refusing the batch. */
  dropOldest?: (tenant: string) => boolean;
}
/** What a hop remembers to drop repeats: the message id, or for a run its first id and count ('+' is never in an id). */
const dedupeKey = (x: IncomingItem) => (isRun(x) ? `${x.idPrefix}${x.first}+${x.count}` : x.id);

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
  /** Dedupe keys whose write is in flight, with that write: a repeat waits for it, never assumes it. */
  private idsInflight = new Map<string, Promise<void>>();
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

  /**
   * Messages and runs from the previous hop: ids kept, repeats (by id, or by a run's first id and
   * count, in a bounded window on disk) skipped. A run is stored as one record, as it came.
   * Repeats are remembered per sender: what one node sends can never make another's ids "seen".
   */
  async appendForwarded(items: IncomingItem[], opts: ForwardedOptions = {}): Promise<{ accepted: number; duplicates: number }> {
    this.assertOpen();
    const { quotaOf = () => undefined, dropOldest } = opts;
    const scope = opts.sender ? `${opts.sender}>` : '';
    if (dropOldest) await this.makeRoom(items, quotaOf, dropOldest);
    const seen = new Set<string>();
    const cand: IncomingItem[] = [];
    const keys: string[] = [];
    let total = 0;
    for (const m of items) {
      total += isRun(m) ? m.count : 1;
      const key = scope + dedupeKey(m);
      if (seen.has(key)) continue;
      seen.add(key);
      cand.push(m);
      keys.push(key);
    }
    // A copy of one of these may be on its way to disk (the previous hop retried while its first
    // request was still being written). Counting it as a duplicate now would let the sender delete
    // its copy even if that write then failed: wait for the write, then look on disk.
    let existing: (Buffer | undefined)[];
    for (;;) {
      const writes = new Set<Promise<void>>();
      for (const k of keys) {
        const w = this.idsInflight.get(k);
        if (w) writes.add(w);
      }
      if (writes.size > 0) {
        await Promise.allSettled(writes);
        this.assertOpen();
        continue;
      }
      existing = await this.dedupe.getMany(this.db, keys);
      this.assertOpen();
      if (!keys.some((k) => this.idsInflight.has(k))) break;
    }
    const fresh: IncomingItem[] = [];
    const freshKeys: string[] = [];
    for (let i = 0; i < cand.length; i++) {
      if (existing[i]) continue;
      fresh.push(cand[i]);
      freshKeys.push(keys[i]);
    }
    for (const [tenant, n] of bytesByTenant(fresh)) {
      const quota = quotaOf(tenant);
      if (quota !== undefined && (this.tenantBytes.get(tenant) ?? 0) + n > quota) throw new SpoolFullError(`tenant ${tenant} spool quota of ${quota} bytes is full`);
    }
    const ops: Op[] = [];
    let accepted = 0;
    for (let i = 0; i < fresh.length; i++) {
      const m = fresh[i];
      const q = this.queue(m.tenant, m.topic);
      const count = isRun(m) ? m.count : 1;
      const rec = isRun(m) ? encodeRun(m, m.bodies) : encodeRecord(m.id, m.contentType, m.ts, m.body);
      ops.push({ type: 'put', key: messageKey(q.prefix, this.reserveSeqs(count)), value: rec });
      this.addBytes(q, count, rec.length);
      this.dedupe.add(ops, freshKeys[i], SEEN);
      accepted += count;
    }
    const write = this.commit(ops);
    for (const k of freshKeys) this.idsInflight.set(k, write);
    try {
      await write;
    } finally {
      for (const k of freshKeys) if (this.idsInflight.get(k) === write) this.idsInflight.delete(k);
    }
    return { accepted, duplicates: total - accepted };
  }

  /**
   * Drop-oldest tenants among forwarded items: room is made before the dedupe check (which must
   * not be separated from the write by an await), for all of their items, repeats included.
   */
  private async makeRoom(items: IncomingItem[], quotaOf: (tenant: string) => number | undefined, dropOldest: (tenant: string) => boolean): Promise<void> {
    for (const [tenant, n] of bytesByTenant(items)) {
      const quota = quotaOf(tenant);
      if (quota === undefined || n > quota || !dropOldest(tenant)) continue;
      const over = () => (this.tenantBytes.get(tenant) ?? 0) + n - quota;
      for (const q of [...this.queues.values()].filter((x) => x.tenant === tenant)) {
        for (let i = 0; i < 5 && over() > 0; i++) if ((await this.removeOldest(q, { bytes: over() }, 'dropped')) === 0) break;
      }
    }
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
    const end = queueEnd(q.name);
    const it = this.db.iterator({ gte: messageKey(q.prefix, from), lt: end });
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
      await closeIterator(it, end);
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
    const records: ReadRecord[] = [];
    let count = 0;
    let bytes = 0;
    for (const q of qs) {
      if (count >= maxMessages || bytes >= maxBytes) break;
      const bad: Op[] = [];
      let badBytes = 0;
      let badCount = 0;
      const end = queueEnd(q.name);
      const it = this.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: end });
      try {
        outer: for (;;) {
          const page = await it.nextv(Math.min(64, maxMessages - count));
          if (page.length === 0) break;
          for (const [k, v] of page) {
            // A chunk goes whole: it is deleted whole once the next hop has every message of it.
            const n = recordCount(v);
            if (records.length > 0 && (bytes + v.length > maxBytes || count + n > maxMessages)) break outer;
            const seq = seqOfKey(k);
            let run: ReadRecord['run'];
            try {
              // Checked now (bodies walked, not copied), so nothing downstream meets a bad record.
              run = readRun(seq, v);
              if (!run) decodeRecord(q.tenant, q.topic, v);
            } catch {
              // An unreadable record must not block its queue forever: set it aside (kept, counted).
              bad.push({ type: 'put', key: Buffer.concat([Buffer.from('z'), k]), value: v }, { type: 'del', key: k });
              badBytes += v.length;
              badCount += Math.max(1, Math.min(n, q.c.count - badCount));
              continue;
            }
            records.push({ q, seq, value: v, count: n, run });
            count += n;
            bytes += v.length;
            if (count >= maxMessages) break outer;
          }
        }
      } finally {
        await closeIterator(it, end);
      }
      if (bad.length > 0) {
        this.addBytes(q, -badCount, -badBytes);
        q.c.corrupt += badCount;
        this.log.error('unreadable spool records set aside', { tenant: q.tenant, topic: q.topic, records: bad.length / 2, messages: badCount });
        await this.commit(bad);
      }
    }
    return new Batch(generation, records, count, bytes);
  }

  /** The next hop has them: delete, advance the cursors. Stale batches (store reopened) are ignored. */
  async ack(batch: Batch): Promise<void> {
    if (batch.generation !== this.generation || batch.records.length === 0) return;
    const ops: Op[] = [];
    const last = new Map<Queue, number>();
    for (const r of batch.records) {
      // Skipped when drop-oldest or TTL already removed it (the cursor moved past it meanwhile).
      if (r.seq >= r.q.c.head) {
        ops.push({ type: 'del', key: messageKey(r.q.prefix, r.seq) });
        this.addBytes(r.q, -r.count, -r.value.length);
      }
      last.set(r.q, r.seq + r.count - 1);
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
        const end = queueEnd(q.name);
        const it = this.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: end, limit: 1 });
        try {
          const [first] = await it.nextv(1);
          const ts = first ? recordTime(first[1]) : undefined;
          if (ts !== undefined) oldest = Math.max(0, (now - ts) / 1000);
        } finally {
          await closeIterator(it, end);
        }
      }
      const c = q.c;
      out.push({ tenant: q.tenant, topic: q.topic, depth: c.count, bytes: c.bytes, dropped: c.dropped, expired: c.expired, purged: c.purged, corrupt: c.corrupt, oldestAgeSeconds: oldest });
    }
    return out.sort((a, b) => (a.tenant + a.topic).localeCompare(b.tenant + b.topic));
  }
}
