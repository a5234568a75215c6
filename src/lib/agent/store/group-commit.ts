import { errorMessage } from '../../errors.js';
import { SpoolUnavailableError } from './errors.js';
import type { Db } from './open.js';
import type { Op } from './window.js';

interface Job {
  ops: Op[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A batch whose write returned (it is in LevelDB's log, in the kernel) and that waits for its fdatasync. */
interface Written {
  jobs: Job[];
  /** The global seq once this batch's messages were numbered: every seq below it is in this batch or an earlier one. */
  seqAfter: number;
}

/** What the group commit writes to, and whom it tells when a write fails. */
export interface CommitTarget {
  readonly state: string;
  readonly db: Db;
  /** The next seq to hand out, read when a batch is gathered. */
  readonly nextSeq: number;
  /** The counter writes that go with the data of this batch (taken synchronously). */
  snapshot(): Op[];
  /** fdatasync of the store's log: covers every write that had returned before the call. */
  syncLog(): Promise<void>;
  /** Every seq below `seq` is synced (the readers may hand it on). */
  onSynced(seq: number): void;
  onWriteError(err: unknown): void;
}

/** Batches written but not yet covered by a finished fdatasync, at most (the one being written included). */
export const MAX_IN_FLIGHT = 4;

/**
 * Pipelined group commit. classic-level neither group-commits for us nor orders concurrent
 * writes, so the writes are issued one at a time, in the order the operations were submitted:
 * LevelDB's log then holds the batches in that order, each with the counter snapshot taken as
 * it was gathered. A batch's write returns once it is in the log (not synced); while the disk
 * syncs, the next batch is gathered and written (up to MAX_IN_FLIGHT unsynced). One fdatasync
 * of the log (log-sync.ts) covers every batch written before it began; they are answered then,
 * in order, so a caller is answered only when its batch and every batch before it are synced.
 * A crash leaves a prefix of the log: what survives is a prefix of what was written, which holds
 * everything acknowledged. A failed write or sync fails every batch not yet answered: never
 * retry-and-acknowledge.
 */
export class GroupCommit {
  private pending: Job[] = [];
  private written: Written[] = [];
  private writing = false;
  private syncing = 0;
  /** Bumped by reset(): a sync that began on the store before a reopen must not move the new store's watermark. */
  private round = 0;
  /** Batches written, synced, the most ever in flight at once (for /status and the tests). */
  readonly stats = { batches: 0, syncs: 0, maxInFlight: 0 };

  constructor(private readonly target: CommitTarget) {}

  /** True while a batch is being written or waits for its sync. */
  get busy(): boolean {
    return this.writing || this.syncing > 0 || this.written.length > 0;
  }

  private get inFlight(): number {
    return (this.writing ? 1 : 0) + this.syncing + this.written.length;
  }

  /** Queues `ops` (plus the counters changed so far) for the next batch; resolved once it is synced. */
  commit(ops: Op[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.target.state !== 'open') {
        reject(new SpoolUnavailableError(`spool is ${this.target.state}`));
        return;
      }
      this.pending.push({ ops, resolve, reject });
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
    this.round++;
  }

  private pump(): void {
    if (!this.writing && this.pending.length > 0 && this.target.state === 'open' && this.inFlight < MAX_IN_FLIGHT) void this.write();
    if (this.syncing === 0 && this.written.length > 0) void this.sync();
  }

  private async write(): Promise<void> {
    this.writing = true;
    const jobs = this.pending;
    this.pending = [];
    const ops: Op[] = [];
    for (const j of jobs) for (const op of j.ops) ops.push(op);
    // Taken synchronously with the jobs: the snapshot and the seq reflect exactly this batch and those before it.
    for (const op of this.target.snapshot()) ops.push(op);
    const seqAfter = this.target.nextSeq;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.inFlight);
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
    this.stats.batches++;
    this.written.push({ jobs, seqAfter });
    this.pump();
  }

  private async sync(): Promise<void> {
    const batches = this.written;
    const round = this.round;
    this.written = [];
    this.syncing = batches.length;
    try {
      await this.target.syncLog();
    } catch (err) {
      this.syncing = 0;
      if (round === this.round) this.fail(err, batches.flatMap((b) => b.jobs));
      else for (const b of batches) for (const j of b.jobs) j.reject(new SpoolUnavailableError(`spool write failed: ${errorMessage(err)}`, { cause: err }));
      return;
    }
    this.syncing = 0;
    this.stats.syncs++;
    for (const b of batches) for (const j of b.jobs) j.resolve();
    if (round === this.round) this.target.onSynced(batches[batches.length - 1].seqAfter);
    this.pump();
  }

  /**
   * The write may be half on disk and Linux reports a failed write-back once: fail these jobs and
   * every later one (written or waiting), then the store reopens and reloads its counters from disk.
   * A sync already running for earlier batches still answers them if it succeeds.
   */
  private fail(err: unknown, jobs: Job[]): void {
    const e = new SpoolUnavailableError(`spool write failed: ${errorMessage(err)}`, { cause: err });
    for (const j of jobs) j.reject(e);
    const later = this.written;
    this.written = [];
    for (const b of later) for (const j of b.jobs) j.reject(e);
    this.failPending(e);
    this.target.onWriteError(err);
  }
}
