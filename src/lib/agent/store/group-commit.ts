import { errorChain } from '../../errors.js';
import { SpoolUnavailableError } from './errors.js';
import type { Db } from './open.js';
import type { Op } from './window.js';
import { now, record, tracing } from './trace.js';

interface Job {
  ops: Op[];
  resolve: () => void;
  reject: (err: Error) => void;
  /** When traced (trace.ts): when the job was queued. */
  t?: number;
}

/** A batch whose write returned (it is in LevelDB's log, in the kernel) and that waits for its fdatasync. */
interface Written {
  jobs: Job[];
  /** The global seq once this batch's messages were numbered: every seq below it is in this batch or an earlier one. */
  seqAfter: number;
  /** When traced: the write's start and end. */
  tw?: [number, number];
}

/** What the group commit writes to, and whom it tells when a write fails. */
export interface CommitTarget {
  readonly state: string;
  readonly db: Db;
  /** The next seq to hand out, read when a batch is gathered. */
  readonly nextSeq: number;
  /** The counter writes that go with the data of this batch (taken synchronously). */
  snapshot(): Op[];
  /**
   * fdatasync of the store's log through sync slot `slot` (each slot has its own file handles,
   * so an I/O error is reported to every slot's next sync, not only to the first one that asks):
   * covers every write that had returned before the call.
   */
  syncLog(slot: number): Promise<void>;
  /** Every seq below `seq` is synced (the readers may hand it on). */
  onSynced(seq: number): void;
  onWriteError(err: unknown): void;
}

/** fdatasyncs of the log in flight at once, at most: each covers what was written before it began. */
export const SYNC_SLOTS = 4;

interface Sync {
  slot: number;
  batches: Written[];
  /** When traced: when its fdatasync began. */
  t?: number;
}

/**
 * Pipelined group commit. classic-level neither group-commits for us nor orders concurrent
 * writes, so the writes are issued one at a time, in the order the operations were submitted:
 * LevelDB's log then holds the batches in that order, each with the counter snapshot taken as
 * it was gathered. A batch's write returns once it is in the log (in the kernel, not synced);
 * the next batch is gathered and written at once, while the disk syncs. An fdatasync of the log
 * (log-sync.ts) covers every batch written before it began; up to SYNC_SLOTS run at once, the
 * next one starting while the last one is on the disk. When one ends, its batches and those of
 * every sync begun before it are answered, in order: a caller is answered only when its batch
 * and every batch before it are synced. A crash leaves a prefix of the log, which holds
 * everything acknowledged. A failed write or sync fails every batch not yet answered, whatever
 * another sync says after: never retry-and-acknowledge.
 */
export class GroupCommit {
  private pending: Job[] = [];
  private written: Written[] = [];
  private syncs: Sync[] = [];
  private freeSlots = Array.from({ length: SYNC_SLOTS }, (_, i) => i);
  private writing = false;
  /** Bumped by a failure and by reset(): a sync begun before must not answer anyone or move the watermark. */
  private round = 0;
  /** Batches written, syncs completed, the most batches written and not yet answered at once (for /status and the tests). */
  readonly stats = { batches: 0, syncs: 0, maxInFlight: 0 };

  constructor(private readonly target: CommitTarget) {}

  /** True while a batch is being written or waits for its sync. */
  get busy(): boolean {
    return this.writing || this.syncs.length > 0 || this.written.length > 0 || this.freeSlots.length < SYNC_SLOTS;
  }

  /** Queues `ops` (plus the counters changed so far) for the next batch; resolved once it and every earlier batch are synced. */
  commit(ops: Op[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.target.state !== 'open') {
        reject(new SpoolUnavailableError(`spool is ${this.target.state}`));
        return;
      }
      this.pending.push(tracing ? { ops, resolve, reject, t: now() } : { ops, resolve, reject });
      this.pump();
    });
  }

  failPending(e: Error): void {
    const jobs = this.pending;
    this.pending = [];
    for (const j of jobs) j.reject(e);
  }

  /** On (re)load: whatever was queued for the store that went away is forgotten. */
  reset(): void {
    this.pending = [];
    this.written = [];
    this.syncs = [];
    this.round++;
  }

  private pump(): void {
    if (!this.writing && this.pending.length > 0 && this.target.state === 'open') void this.write();
    if (this.written.length > 0 && this.freeSlots.length > 0) void this.sync();
  }

  private async write(): Promise<void> {
    this.writing = true;
    const round = this.round;
    const jobs = this.pending;
    this.pending = [];
    const ops: Op[] = [];
    for (const j of jobs) for (const op of j.ops) ops.push(op);
    // Taken synchronously with the jobs: the snapshot and the seq reflect exactly this batch and those before it.
    for (const op of this.target.snapshot()) ops.push(op);
    const seqAfter = this.target.nextSeq;
    const tw0 = tracing ? now() : 0;
    try {
      // The chained form: several times cheaper per operation than batch(array) in abstract-level.
      const b = this.target.db.batch();
      for (const op of ops) {
        if (op.type === 'put') b.put(op.key, op.value);
        else b.del(op.key);
      }
      await b.write({ sync: false });
    } catch (err) {
      this.writing = false;
      this.fail(err, jobs);
      return;
    }
    this.writing = false;
    if (round !== this.round) {
      for (const j of jobs) j.reject(new SpoolUnavailableError('spool write failed: the store was reopened'));
      return;
    }
    this.stats.batches++;
    if (tracing) record(`commit: batch write with ${this.syncs.length} syncs in flight at its end`, now() - tw0);
    this.written.push(tracing ? { jobs, seqAfter, tw: [tw0, now()] } : { jobs, seqAfter });
    let n = this.written.length;
    for (const s of this.syncs) n += s.batches.length;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, n);
    this.pump();
  }

  private async sync(): Promise<void> {
    const slot = this.freeSlots.pop()!;
    const round = this.round;
    const mine: Sync = tracing ? { slot, batches: this.written, t: now() } : { slot, batches: this.written };
    this.written = [];
    this.syncs.push(mine);
    try {
      await this.target.syncLog(slot);
    } catch (err) {
      this.freeSlots.push(slot);
      if (round === this.round) this.fail(err, []);
      return;
    }
    this.freeSlots.push(slot);
    if (round !== this.round) return;
    this.stats.syncs++;
    // This fdatasync covers every batch written before it began: those of the syncs begun earlier too.
    const i = this.syncs.indexOf(mine);
    if (i !== -1) {
      const done = this.syncs.splice(0, i + 1);
      if (tracing) traceDone(done, mine);
      for (const s of done) for (const b of s.batches) for (const j of b.jobs) j.resolve();
      const last = done[done.length - 1].batches;
      this.target.onSynced(last[last.length - 1].seqAfter);
    }
    this.pump();
  }

  /**
   * The write may be half on disk and Linux reports a failed write-back once: fail these jobs and
   * every one not yet answered (being synced, written or waiting), then the store reopens and
   * reloads its counters from disk.
   */
  private fail(err: unknown, jobs: Job[]): void {
    this.round++;
    const e = new SpoolUnavailableError(`spool write failed: ${errorChain(err)}`, { cause: err });
    for (const j of jobs) j.reject(e);
    const open = [...this.syncs.flatMap((s) => s.batches), ...this.written];
    this.syncs = [];
    this.written = [];
    for (const b of open) for (const j of b.jobs) j.reject(e);
    this.failPending(e);
    this.target.onWriteError(err);
  }
}

/** trace.ts: each answered job's time queued, in its write, waiting for a sync slot, and until the covering sync ended. */
function traceDone(done: Sync[], by: Sync): void {
  const end = now();
  record('commit: fdatasync (own slot)', end - by.t!);
  let jobs = 0;
  for (const s of done) {
    for (const b of s.batches) {
      for (const j of b.jobs) {
        record('commit: queued before its batch write', b.tw![0] - j.t!);
        record('commit: batch write (LevelDB, no sync)', b.tw![1] - b.tw![0]);
        record('commit: written, waiting for a sync slot', s.t! - b.tw![1]);
        record('commit: sync begun until covered', end - s.t!);
        jobs++;
      }
    }
  }
  record('commit: jobs answered per sync (count, not us)', jobs / 1000);
}
