import { errorMessage } from '../../errors.js';
import { SpoolUnavailableError } from './errors.js';
import type { Db } from './open.js';
import type { Op } from './window.js';

interface Job {
  ops: Op[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What the group commit writes to, and whom it tells when a write fails. */
export interface CommitTarget {
  readonly state: string;
  readonly db: Db;
  /** The counter writes that go with the data of this batch (taken synchronously). */
  snapshot(): Op[];
  onWriteError(err: unknown): void;
}

/**
 * classic-level does not group-commit for us: a single `batch(..., {sync: true})` in flight,
 * everything submitted meanwhile joins the next one, and every caller is answered when the
 * batch that holds its operations has been synced. Nothing is acknowledged before that.
 */
export class GroupCommit {
  private pending: Job[] = [];
  private writing = false;

  constructor(private readonly target: CommitTarget) {}

  /** True while a batch is being written. */
  get busy(): boolean {
    return this.writing;
  }

  /** Queues `ops` (plus the counters changed so far) for the next synced batch. */
  commit(ops: Op[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.target.state !== 'open') {
        reject(new SpoolUnavailableError(`spool is ${this.target.state}`));
        return;
      }
      this.pending.push({ ops, resolve, reject });
      if (!this.writing) void this.flush();
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
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0 && this.target.state === 'open') {
      const jobs = this.pending;
      this.pending = [];
      const ops: Op[] = [];
      for (const j of jobs) for (const op of j.ops) ops.push(op);
      // Counter snapshot taken synchronously: it reflects exactly the jobs in this batch.
      for (const op of this.target.snapshot()) ops.push(op);
      try {
        // The chained form: several times cheaper per operation than batch(array) in abstract-level.
        const b = this.target.db.batch();
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
        this.target.onWriteError(err);
        break;
      }
      for (const j of jobs) j.resolve();
    }
    this.writing = false;
  }
}
