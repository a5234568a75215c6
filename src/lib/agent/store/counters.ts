import { META_QUEUE, META_SEQ, queueMetaKey, queueName, queuePrefix, readU64, seqOfKey, splitQueue, u64 } from './keys.js';
import type { Db } from './open.js';
import { recordCount } from './record.js';
import type { Op } from './window.js';

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
  /** Device messages and their body bytes ever stored (only grow): HTTPQ metering's source (agent/metering/httpq.ts). */
  intake: number;
  intakeBytes: number;
}

/** One tenant/topic queue as the store tracks it: its key prefix and its counters. */
export interface QueueState {
  name: string;
  tenant: string;
  topic: string;
  prefix: Buffer;
  c: QueueCounters;
  dirty: boolean;
  /** Where the next drop-oldest / TTL sweep starts (past earlier drops behind in-flight data). */
  dropCursor: number;
}

/**
 * The store's counters: per queue, bytes per tenant, the global seq, deletions since the last
 * compaction. The changed ones are written in the same synced batch as the data they count
 * (see group-commit.ts), so start-up reads them instead of scanning.
 */
export class Counters {
  readonly queues = new Map<string, QueueState>();
  private readonly tenantBytes = new Map<string, number>();
  /** The next seq to hand out. */
  seq = 1;
  private seqDirty = false;
  private deletedSinceCompact = 0;

  queue(tenant: string, topic: string): QueueState {
    const name = queueName(tenant, topic);
    let q = this.queues.get(name);
    if (!q) {
      q = { name, tenant, topic, prefix: queuePrefix(name), c: { head: 0, count: 0, bytes: 0, dropped: 0, expired: 0, purged: 0, corrupt: 0, intake: 0, intakeBytes: 0 }, dirty: false, dropCursor: 0 };
      this.queues.set(name, q);
    }
    return q;
  }

  /** The queue if it has ever been written, without creating it. */
  find(tenant: string, topic: string): QueueState | undefined {
    return this.queues.get(queueName(tenant, topic));
  }

  ofTenant(tenant: string): QueueState[] {
    return [...this.queues.values()].filter((q) => q.tenant === tenant);
  }

  /** What a tenant's messages take on disk, all its topics (as its quota counts them). */
  tenantUsed(tenant: string): number {
    return this.tenantBytes.get(tenant) ?? 0;
  }

  /** n consecutive seqs; returns the first. */
  reserveSeqs(n: number): number {
    this.seqDirty = true;
    const first = this.seq;
    this.seq += n;
    return first;
  }

  addBytes(q: QueueState, count: number, bytes: number): void {
    q.c.count += count;
    q.c.bytes += bytes;
    q.dirty = true;
    this.tenantBytes.set(q.tenant, this.tenantUsed(q.tenant) + bytes);
  }

  /** Device intake: written with the data it counts, so metering sees exactly what was acknowledged. */
  addIntake(q: QueueState, count: number, bodyBytes: number): void {
    q.c.intake += count;
    q.c.intakeBytes += bodyBytes;
    q.dirty = true;
  }

  noteDeleted(records: number): void {
    this.deletedSinceCompact += records;
  }

  /** True (and the count restarts) once `every` records were deleted since the last time. */
  compactionDue(every: number): boolean {
    if (this.deletedSinceCompact < every) return false;
    this.deletedSinceCompact = 0;
    return true;
  }

  /** The writes of every counter changed so far, marked clean: taken synchronously, they match the batch they join. */
  dirtyOps(): Op[] {
    const ops: Op[] = [];
    for (const q of this.queues.values()) {
      if (q.dirty) {
        ops.push(this.queueOp(q));
        q.dirty = false;
      }
    }
    if (this.seqDirty) {
      ops.push({ type: 'put', key: META_SEQ, value: u64(this.seq) });
      this.seqDirty = false;
    }
    return ops;
  }

  /** Reads the seq and every queue's counters as the last synced batch left them. */
  async load(db: Db): Promise<void> {
    this.queues.clear();
    this.tenantBytes.clear();
    const seq = await db.get(META_SEQ);
    this.seq = seq ? readU64(seq) : 1;
    // Every queue's counters: META_QUEUE + name, up to the prefix with its ':' bumped to ';'.
    for await (const [k, v] of db.iterator({ gte: Buffer.from(META_QUEUE), lt: Buffer.from(META_QUEUE.slice(0, -1) + ';') })) {
      const name = k.toString('latin1').slice(META_QUEUE.length);
      const { tenant, topic } = splitQueue(name);
      const q = this.queue(tenant, topic);
      q.c = { ...q.c, ...(JSON.parse(v.toString()) as Partial<QueueCounters>) };
    }
  }

  /** After load (and any recount): sweeps start at the cursors, tenant totals are summed. */
  settle(): void {
    for (const q of this.queues.values()) {
      q.dropCursor = q.c.head;
      this.tenantBytes.set(q.tenant, this.tenantUsed(q.tenant) + q.c.bytes);
    }
  }

  /**
   * Only after a repair (records may be gone): a full scan, once, to make the counters true
   * again. Returns the messages that survived; the caller writes allOps() synced.
   */
  async recount(db: Db): Promise<number> {
    for (const q of this.queues.values()) { q.c.count = 0; q.c.bytes = 0; q.c.head = Number.MAX_SAFE_INTEGER; }
    let maxSeq = this.seq - 1;
    for await (const [k, v] of db.iterator({ gte: Buffer.from('m'), lt: Buffer.from('n') })) {
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
    let salvaged = 0;
    for (const q of this.queues.values()) salvaged += q.c.count;
    return salvaged;
  }

  /** Every counter's write, changed or not (after a recount). */
  allOps(): Op[] {
    return [...[...this.queues.values()].map((q) => this.queueOp(q)), { type: 'put', key: META_SEQ, value: u64(this.seq) }];
  }

  /** Marks every counter clean once allOps() is on disk. */
  markClean(): void {
    for (const q of this.queues.values()) q.dirty = false;
    this.seqDirty = false;
  }

  private queueOp(q: QueueState): Op {
    return { type: 'put', key: queueMetaKey(q.name), value: Buffer.from(JSON.stringify(q.c)) };
  }
}
