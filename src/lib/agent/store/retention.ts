import type { SpoolCore } from './core.js';
import type { QueueState } from './counters.js';
import { messageKey, queueEnd, seqOfKey } from './keys.js';
import { recordCount, recordTime } from './record.js';
import { closeIterator } from './iter.js';
import type { Op } from './window.js';

export interface PurgedQueue {
  tenant: string;
  topic: string;
  count: number;
  bytes: number;
}

/** What leaves the store other than by an ack: drop-oldest, TTL, purge; and keeping it fast (windows, compaction). */
export class Retention {
  constructor(private readonly core: SpoolCore) {}

  /**
   * Drops the oldest messages: to make room (drop-oldest) or past their TTL. Counted. The cursor
   * moves past them, so an ack of a batch that held them skips them (a hung upstream must not
   * block drop-oldest); a message dropped while already on its way may still arrive.
   */
  async removeOldest(q: QueueState, until: { bytes?: number; olderThan?: number }, reason: 'dropped' | 'expired'): Promise<number> {
    const { core } = this;
    const start = () => Math.max(q.c.head, q.dropCursor);
    const from = start();
    const victims: { key: Buffer; seq: number; size: number; count: number }[] = [];
    let freed = 0;
    const end = queueEnd(q.name);
    const it = core.db.iterator({ gte: messageKey(q.prefix, from), lt: end });
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
    if (ok.length === 0 || core.state !== 'open') return 0;
    const ops: Op[] = ok.map((v) => ({ type: 'del', key: v.key }));
    const bytes = ok.reduce((s, v) => s + v.size, 0);
    // A record that claims more messages than the queue holds is corrupt: never count below zero.
    const count = Math.min(q.c.count, ok.reduce((s, v) => s + v.count, 0));
    core.counters.addBytes(q, -count, -bytes);
    q.c[reason] += count;
    const last = ok[ok.length - 1].seq;
    if (floor === q.c.head) q.c.head = last + 1;
    q.dropCursor = last + 1;
    core.counters.noteDeleted(ok.length);
    await core.commit(ops);
    return count;
  }

  /** Frees `over()` bytes from the given queues, oldest first, a few sweeps each at most. */
  async makeRoom(queues: QueueState[], over: () => number): Promise<void> {
    for (const q of queues) {
      for (let i = 0; i < 5 && over() > 0; i++) if ((await this.removeOldest(q, { bytes: over() }, 'dropped')) === 0) break;
    }
  }

  /** Removes every message of the matching queues; says what it removed. */
  async purge(tenant?: string, topic?: string): Promise<PurgedQueue[]> {
    const { core } = this;
    core.assertOpen();
    const { counters } = core;
    const removed: PurgedQueue[] = [];
    const ranges: [Buffer, Buffer][] = [];
    for (const q of counters.queues.values()) {
      if ((tenant && q.tenant !== tenant) || (topic && q.topic !== topic) || q.c.count === 0) continue;
      removed.push({ tenant: q.tenant, topic: q.topic, count: q.c.count, bytes: q.c.bytes });
      q.c.purged += q.c.count;
      counters.addBytes(q, -q.c.count, -q.c.bytes);
      ranges.push([messageKey(q.prefix, q.c.head), messageKey(q.prefix, counters.seq)]);
      q.c.head = counters.seq;
      q.dropCursor = q.c.head;
    }
    // Cursors move first (durably); keys below a cursor are never read, so a crash before clear() is harmless.
    await core.commit([]);
    for (const [gte, lt] of ranges) await core.db.clear({ gte, lt });
    return removed;
  }

  /** Up to 100,000 evictions per call per window, so the windows keep up with fast intake. */
  async evictWindows(): Promise<void> {
    const { core } = this;
    for (const w of [core.dedupe, core.idempotency]) {
      for (let i = 0; i < 5; i++) {
        const ops = await w.evictOps(core.db, 20_000);
        if (ops.length === 0) break;
        await core.commit(ops);
      }
    }
  }

  /** Deletes keys below the cursors now and then, so seeks never wade through tombstones. */
  async compactIfDue(every = 200_000): Promise<void> {
    const { core } = this;
    if (core.state !== 'open' || !core.counters.compactionDue(every)) return;
    for (const q of core.counters.queues.values()) await core.db.compactRange(q.prefix, messageKey(q.prefix, q.c.head));
  }
}
