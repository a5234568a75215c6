import { randomBytes } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import { META_EPOCH, META_QUEUE, META_SEQ, messageKey, queueMetaKey, queueName, queuePrefix, readU64, splitQueue, u64, seqOfKey, windowMetaKey } from './keys.js';
import { type Db, type StoreIncident, openStore, isCorruption } from './open.js';
import { DedupeWindow, type Op } from './window.js';
import { SpoolUnavailableError } from './errors.js';
import { recordCount } from './record.js';

export interface QueueCounters {
  /** Cursor: every message with a lower seq is gone. Reads seek here, never from the start. */
  head: number;
  count: number;
  bytes: number;
  dropped: number;
  expired: number;
  purged: number;
  /** Unreadable records set aside (kept under the z prefix, never deleted). */
  corrupt: number;
}

export interface Queue {
  name: string;
  tenant: string;
  topic: string;
  prefix: Buffer;
  c: QueueCounters;
  dirty: boolean;
  /** Where the next drop-oldest / TTL sweep starts (past earlier drops behind in-flight data). */
  dropCursor: number;
}

export interface SpoolOptions {
  dataDir: string;
  log: Logger;
  dedupeWindow?: number;
  idempotencyWindow?: number;
  /** Limits of one chunk record (a device batch is stored as few records as these allow). */
  chunkMessages?: number;
  chunkBytes?: number;
}

interface Job {
  ops: Op[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export type SpoolState = 'opening' | 'open' | 'degraded' | 'closing' | 'closed';

/**
 * The on-disk queue. Only the agent process opens it. Writes go through one group commit: a
 * single `batch(..., {sync: true})` in flight, everything submitted meanwhile joins the next
 * one, and every caller is answered when the batch that holds its operations has been synced.
 * Counters (per queue, global seq, dedupe windows) are rewritten in the same batch as the data,
 * so start-up reads them instead of scanning.
 */
export class SpoolCore {
  state: SpoolState = 'opening';
  db!: Db;
  epoch = '';
  seq = 1;
  generation = 0;
  readonly queues = new Map<string, Queue>();
  readonly tenantBytes = new Map<string, number>();
  readonly dedupe: DedupeWindow;
  readonly idempotency: DedupeWindow;
  readonly incidents: StoreIncident[] = [];
  lastWriteError?: { at: string; message: string };
  writeErrors = 0;
  deletedSinceCompact = 0;
  private seqDirty = false;
  private pending: Job[] = [];
  private writing = false;
  private recovering?: Promise<void>;

  constructor(readonly opts: SpoolOptions) {
    this.dedupe = new DedupeWindow('dedupe', opts.dedupeWindow ?? 1_000_000);
    this.idempotency = new DedupeWindow('idem', opts.idempotencyWindow ?? 100_000);
  }

  get log(): Logger {
    return this.opts.log;
  }

  async open(): Promise<void> {
    const opened = await openStore(this.opts.dataDir, this.log);
    this.incidents.push(...opened.incidents);
    this.db = opened.db;
    await this.load(opened.repaired);
    this.state = 'open';
    this.generation++;
  }

  assertOpen(): void {
    if (this.state !== 'open') throw new SpoolUnavailableError(`spool is ${this.state}`);
  }

  queue(tenant: string, topic: string): Queue {
    const name = queueName(tenant, topic);
    let q = this.queues.get(name);
    if (!q) {
      q = { name, tenant, topic, prefix: queuePrefix(name), c: { head: 0, count: 0, bytes: 0, dropped: 0, expired: 0, purged: 0, corrupt: 0 }, dirty: false, dropCursor: 0 };
      this.queues.set(name, q);
    }
    return q;
  }

  /** n consecutive seqs; returns the first. */
  reserveSeqs(n: number): number {
    this.seqDirty = true;
    const first = this.seq;
    this.seq += n;
    return first;
  }

  get chunkMessages(): number {
    return this.opts.chunkMessages ?? 1000;
  }

  get chunkBytes(): number {
    return this.opts.chunkBytes ?? 1 << 20;
  }

  addBytes(q: Queue, count: number, bytes: number): void {
    q.c.count += count;
    q.c.bytes += bytes;
    q.dirty = true;
    this.tenantBytes.set(q.tenant, (this.tenantBytes.get(q.tenant) ?? 0) + bytes);
  }

  /** Queues `ops` (plus the counters changed so far) for the next synced batch. */
  commit(ops: Op[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open') {
        reject(new SpoolUnavailableError(`spool is ${this.state}`));
        return;
      }
      this.pending.push({ ops, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0 && this.state === 'open') {
      const jobs = this.pending;
      this.pending = [];
      const ops: Op[] = [];
      for (const j of jobs) for (const op of j.ops) ops.push(op);
      // Counter snapshot taken synchronously: it reflects exactly the jobs in this batch.
      for (const q of this.queues.values()) {
        if (q.dirty) {
          ops.push({ type: 'put', key: queueMetaKey(q.name), value: Buffer.from(JSON.stringify(q.c)) });
          q.dirty = false;
        }
      }
      if (this.seqDirty) {
        ops.push({ type: 'put', key: META_SEQ, value: u64(this.seq) });
        this.seqDirty = false;
      }
      if (this.dedupe.dirty) ops.push(this.dedupe.metaOp());
      if (this.idempotency.dirty) ops.push(this.idempotency.metaOp());
      try {
        // The chained form: several times cheaper per operation than batch(array) in abstract-level.
        const b = this.db.batch();
        for (const op of ops) {
          if (op.type === 'put') b.put(op.key, op.value);
          else b.del(op.key);
        }
        await b.write({ sync: true });
      } catch (err) {
        // Never retry-and-acknowledge: the write may be half on disk and Linux reports a failed
        // write-back once. Fail everyone waiting, reopen, reload the counters from disk.
        const e = new SpoolUnavailableError(`spool write failed: ${errorMessage(err)}`, { cause: err });
        for (const j of jobs) j.reject(e);
        this.failPending(e);
        this.onWriteError(err);
        break;
      }
      for (const j of jobs) j.resolve();
    }
    this.writing = false;
  }

  private failPending(e: Error): void {
    const jobs = this.pending;
    this.pending = [];
    for (const j of jobs) j.reject(e);
  }

  private onWriteError(err: unknown): void {
    this.writeErrors++;
    this.lastWriteError = { at: new Date().toISOString(), message: errorMessage(err) };
    this.log.error('spool write failed; refusing writes until the store is reopened', { error: errorMessage(err) });
    if (this.state === 'open') this.state = 'degraded';
    void this.recover();
  }

  /** Close and reopen until it works (disk space back, I/O error gone); corrupt stores go through repair/quarantine. */
  recover(): Promise<void> {
    if (this.recovering) return this.recovering;
    this.recovering = (async () => {
      let delay = 500;
      try { await this.db.close(); } catch { /* already broken */ }
      while (this.state === 'degraded') {
        try {
          await this.open();
          this.log.warn('spool store reopened; accepting writes again', {});
          return;
        } catch (err) {
          this.lastWriteError = { at: new Date().toISOString(), message: `reopen failed: ${errorMessage(err)}` };
          this.log.error('spool reopen failed; retrying', { error: errorMessage(err), corrupt: isCorruption(err) });
          try { await this.db?.close(); } catch { /* ignore */ }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5000);
        }
      }
    })().finally(() => { this.recovering = undefined; });
    return this.recovering;
  }

  private async load(repaired: boolean): Promise<void> {
    this.queues.clear();
    this.tenantBytes.clear();
    this.pending = [];
    const epoch = await this.db.get(META_EPOCH);
    if (epoch) this.epoch = epoch.toString();
    else {
      // A new store gets a new epoch, so ids stay unique even when a store was quarantined.
      this.epoch = randomBytes(4).toString('hex');
      await this.db.put(META_EPOCH, Buffer.from(this.epoch), { sync: true });
    }
    const seq = await this.db.get(META_SEQ);
    this.seq = seq ? readU64(seq) : 1;
    // Every queue's counters: META_QUEUE + name, up to the prefix with its ':' bumped to ';'.
    for await (const [k, v] of this.db.iterator({ gte: Buffer.from(META_QUEUE), lt: Buffer.from(META_QUEUE.slice(0, -1) + ';') })) {
      const name = k.toString('latin1').slice(META_QUEUE.length);
      const { tenant, topic } = splitQueue(name);
      const q = this.queue(tenant, topic);
      q.c = { ...q.c, ...(JSON.parse(v.toString()) as Partial<QueueCounters>) };
    }
    this.dedupe.load(await this.db.get(windowMetaKey(this.dedupe.name)));
    this.idempotency.load(await this.db.get(windowMetaKey(this.idempotency.name)));
    if (repaired) await this.recount();
    for (const q of this.queues.values()) {
      q.dropCursor = q.c.head;
      this.tenantBytes.set(q.tenant, (this.tenantBytes.get(q.tenant) ?? 0) + q.c.bytes);
    }
  }

  /** Only after a repair (records may be gone): a full scan, once, to make the counters true again. */
  private async recount(): Promise<void> {
    this.log.warn('recounting the spool after repair', {});
    for (const q of this.queues.values()) { q.c.count = 0; q.c.bytes = 0; q.c.head = Number.MAX_SAFE_INTEGER; }
    let maxSeq = this.seq - 1;
    for await (const [k, v] of this.db.iterator({ gte: Buffer.from('m'), lt: Buffer.from('n') })) {
      const s = k.toString('latin1', 1, k.length - 9);
      const { tenant, topic } = splitQueue(s);
      const q = this.queue(tenant, topic);
      const seq = seqOfKey(k);
      const n = recordCount(v);
      if (q.c.head === 0 || seq < q.c.head) q.c.head = seq;
      q.c.count += n;
      q.c.bytes += v.length;
      if (seq + n - 1 > maxSeq) maxSeq = seq + n - 1;
    }
    for (const q of this.queues.values()) {
      if (q.c.count === 0) q.c.head = maxSeq + 1;
      q.dirty = true;
    }
    this.seq = maxSeq + 1;
    this.seqDirty = true;
    const last = this.incidents[this.incidents.length - 1];
    let salvaged = 0;
    for (const q of this.queues.values()) salvaged += q.c.count;
    if (last?.kind === 'repaired') last.reason += `; ${salvaged} messages salvaged`;
    await this.dedupe.recount(this.db);
    await this.idempotency.recount(this.db);
    const ops: Op[] = [...this.queues.values()].map((q) => ({ type: 'put' as const, key: queueMetaKey(q.name), value: Buffer.from(JSON.stringify(q.c)) }));
    ops.push({ type: 'put', key: META_SEQ, value: u64(this.seq) }, this.dedupe.metaOp(), this.idempotency.metaOp());
    await this.db.batch(ops, { sync: true });
    for (const q of this.queues.values()) q.dirty = false;
    this.seqDirty = false;
  }

  /** Deletes keys below the cursors now and then, so seeks never wade through tombstones. */
  async compactIfDue(every = 200_000): Promise<void> {
    if (this.deletedSinceCompact < every || this.state !== 'open') return;
    this.deletedSinceCompact = 0;
    for (const q of this.queues.values()) await this.db.compactRange(q.prefix, messageKey(q.prefix, q.c.head));
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    while (this.writing) await new Promise((r) => setTimeout(r, 5));
    this.failPending(new SpoolUnavailableError('spool closed'));
    if (wasOpen || this.db) { try { await this.db.close(); } catch { /* ignore */ } }
    this.state = 'closed';
  }
}
