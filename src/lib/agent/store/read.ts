import type { SpoolCore } from './core.js';
import type { QueueState } from './counters.js';
import { messageKey, seqOfKey } from './keys.js';
import { decodeRecord, decodeRecords, decodeRun, readRun, recordCount, type Run, type SpoolMessage } from './record.js';
import { closeIterator } from './iter.js';
import type { Op } from './window.js';

/** One stored record as read: a single message, or a chunk / run of `count` messages. */
export interface ReadRecord {
  q: QueueState;
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

/** Reading from the queue heads (from the cursors, never from the start) and acknowledging what the next hop has. */
export class Reader {
  private rr = 0;

  constructor(private readonly core: SpoolCore) {}

  /** Up to maxMessages / maxBytes from the queue heads; `priority` tenants first, the rest round-robin. */
  async readBatch(maxMessages: number, maxBytes: number, priority: ReadonlySet<string> = new Set()): Promise<Batch> {
    const { core } = this;
    core.assertOpen();
    const generation = core.generation;
    const all = [...core.counters.queues.values()].filter((q) => q.c.count > 0);
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
      // Up to the synced seq: a batch written but not yet synced is never handed on.
      const end = messageKey(q.prefix, core.durableSeq);
      const it = core.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: end });
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
        core.counters.addBytes(q, -badCount, -badBytes);
        q.c.corrupt += badCount;
        core.log.error('unreadable spool records set aside', { tenant: q.tenant, topic: q.topic, records: bad.length / 2, messages: badCount });
        await core.commit(bad);
      }
    }
    return new Batch(generation, records, count, bytes);
  }

  /** The next hop has them: delete, advance the cursors. Stale batches (store reopened) are ignored. */
  async ack(batch: Batch): Promise<void> {
    const { core } = this;
    if (batch.generation !== core.generation || batch.records.length === 0) return;
    const ops: Op[] = [];
    const last = new Map<QueueState, number>();
    for (const r of batch.records) {
      // Skipped when drop-oldest or TTL already removed it (the cursor moved past it meanwhile).
      if (r.seq >= r.q.c.head) {
        ops.push({ type: 'del', key: messageKey(r.q.prefix, r.seq) });
        core.counters.addBytes(r.q, -r.count, -r.value.length);
      }
      last.set(r.q, r.seq + r.count - 1);
    }
    for (const [q, seq] of last) {
      if (seq + 1 > q.c.head) q.c.head = seq + 1;
      q.dirty = true;
    }
    core.counters.noteDeleted(ops.length);
    await core.commit(ops);
  }

  async peek(tenant: string, topic: string, limit: number): Promise<(SpoolMessage & { seq: number })[]> {
    const { core } = this;
    core.assertOpen();
    const q = core.counters.find(tenant, topic);
    if (!q || q.c.count === 0) return [];
    const out: (SpoolMessage & { seq: number })[] = [];
    for await (const [k, v] of core.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: messageKey(q.prefix, core.durableSeq), limit })) {
      const seq = seqOfKey(k);
      try { decodeRecords(tenant, topic, seq, v).forEach((m, i) => out.push({ ...m, seq: seq + i })); } catch { /* set aside by the forwarder */ }
      if (out.length >= limit) break;
    }
    return out.slice(0, limit);
  }
}
