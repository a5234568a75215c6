import { randomBytes } from 'node:crypto';
import type { Logger } from '../../logger.js';
import { errorChain } from '../../errors.js';
import { META_EPOCH, windowMetaKey } from './keys.js';
import { type Db, type StoreIncident, openStore, isCorruption } from './open.js';
import { DedupeWindow, type Op } from './window.js';
import { SpoolUnavailableError } from './errors.js';
import { Counters } from './counters.js';
import { GroupCommit, SYNC_SLOTS } from './group-commit.js';
import { LogSync } from './log-sync.js';
import path from 'node:path';

export interface SpoolOptions {
  dataDir: string;
  log: Logger;
  /** The node's name: the first part of every id this store hands out. */
  node?: string;
  dedupeWindow?: number;
  idempotencyWindow?: number;
  /** Limits of one chunk record (a device batch is stored as few records as these allow). */
  chunkMessages?: number;
  chunkBytes?: number;
}

export type SpoolState = 'opening' | 'open' | 'degraded' | 'closing' | 'closed';

/**
 * The open store and its lifecycle: open, degrade on a failed write, recover by reopening,
 * close. Only the agent process opens it. The concept modules (append.ts, forwarded.ts,
 * read.ts, retention.ts) share this state; spool.ts puts them behind one API.
 */
export class SpoolCore {
  private current: SpoolState = 'opening';
  private store!: Db;
  private epochId = '';
  private opened = 0;
  readonly counters = new Counters();
  readonly dedupe: DedupeWindow;
  readonly idempotency: DedupeWindow;
  readonly incidents: StoreIncident[] = [];
  private lastError?: { at: string; message: string };
  private errors = 0;
  private recovering?: Promise<void>;
  private readonly writer = new GroupCommit(this);
  /** One per sync slot (group-commit.ts): each with its own file handles on the log. */
  private logSyncs: LogSync[] = [];
  /** Every message with a lower seq is synced: readers hand on nothing above it (written, not yet synced). */
  private synced = 0;

  constructor(readonly opts: SpoolOptions) {
    this.dedupe = new DedupeWindow('dedupe', opts.dedupeWindow ?? 1_000_000);
    this.idempotency = new DedupeWindow('idem', opts.idempotencyWindow ?? 100_000);
  }

  get state(): SpoolState {
    return this.current;
  }

  get db(): Db {
    return this.store;
  }

  /** Part of every id: a new store gets a new one. */
  get epoch(): string {
    return this.epochId;
  }

  /** Bumped on every (re)open: a batch read before a reopen is stale. */
  get generation(): number {
    return this.opened;
  }

  get node(): string {
    return this.opts.node ?? 'node';
  }

  get log(): Logger {
    return this.opts.log;
  }

  get chunkMessages(): number {
    return this.opts.chunkMessages ?? 1000;
  }

  get chunkBytes(): number {
    return this.opts.chunkBytes ?? 1 << 20;
  }

  get writeErrors(): number {
    return this.errors;
  }

  get lastWriteError(): { at: string; message: string } | undefined {
    return this.lastError;
  }

  assertOpen(): void {
    if (this.current !== 'open') throw new SpoolUnavailableError(`spool is ${this.current}`);
  }

  /** The one write path: resolved once the batch holding `ops` is synced (group-commit.ts). */
  commit(ops: Op[]): Promise<void> {
    return this.writer.commit(ops);
  }

  /** For the group commit: the next seq to hand out. */
  get nextSeq(): number {
    return this.counters.seq;
  }

  /** The first seq not known to be synced: readers stop below it. */
  get durableSeq(): number {
    return this.synced;
  }

  /** Batches written, fdatasyncs of the log, the most batches in flight at once. */
  get commitStats(): { batches: number; syncs: number; fdatasyncs: number; maxInFlight: number } {
    return { ...this.writer.stats, fdatasyncs: this.logSyncs.reduce((n, l) => n + l.syncs, 0) };
  }

  syncLog(slot: number): Promise<void> {
    const l = this.logSyncs[slot];
    if (!l) return Promise.reject(new SpoolUnavailableError('spool is not open'));
    return l.sync();
  }

  onSynced(seq: number): void {
    if (seq > this.synced) this.synced = seq;
  }

  /** For the group commit: the counter and window writes that join its batch. */
  snapshot(): Op[] {
    const ops = this.counters.dirtyOps();
    if (this.dedupe.dirty) ops.push(this.dedupe.metaOp());
    if (this.idempotency.dirty) ops.push(this.idempotency.metaOp());
    return ops;
  }

  async open(): Promise<void> {
    const opened = await openStore(this.opts.dataDir, this.log);
    this.incidents.push(...opened.incidents);
    this.store = opened.db;
    await this.closeLogSyncs();
    this.logSyncs = Array.from({ length: SYNC_SLOTS }, () => new LogSync(path.join(this.opts.dataDir, 'spool')));
    await this.load(opened.repaired);
    this.synced = this.counters.seq;
    this.current = 'open';
    this.opened++;
  }

  onWriteError(err: unknown): void {
    this.errors++;
    this.lastError = { at: new Date().toISOString(), message: errorChain(err) };
    this.log.error('spool write failed; refusing writes until the store is reopened', { error: errorChain(err) });
    if (this.current === 'open') this.current = 'degraded';
    void this.recover();
  }

  /** Close and reopen until it works (disk space back, I/O error gone); corrupt stores go through repair/quarantine. */
  recover(): Promise<void> {
    if (this.recovering) return this.recovering;
    this.recovering = (async () => {
      let delay = 500;
      try { await this.store.close(); } catch { /* already broken */ }
      while (this.current === 'degraded') {
        try {
          await this.open();
          this.log.warn('spool store reopened; accepting writes again', {});
          return;
        } catch (err) {
          this.lastError = { at: new Date().toISOString(), message: `reopen failed: ${errorChain(err)}` };
          this.log.error('spool reopen failed; retrying', { error: errorChain(err), corrupt: isCorruption(err) });
          try { await this.store?.close(); } catch { /* ignore */ }
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5000);
        }
      }
    })().finally(() => { this.recovering = undefined; });
    return this.recovering;
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    const wasOpen = this.current === 'open';
    this.current = 'closing';
    while (this.writer.busy) await new Promise((r) => setTimeout(r, 5));
    this.writer.failPending(new SpoolUnavailableError('spool closed'));
    if (wasOpen || this.store) { try { await this.store.close(); } catch { /* ignore */ } }
    await this.closeLogSyncs();
    this.current = 'closed';
  }

  private async closeLogSyncs(): Promise<void> {
    const all = this.logSyncs;
    this.logSyncs = [];
    await Promise.all(all.map((l) => l.close()));
  }

  private async load(repaired: boolean): Promise<void> {
    this.writer.reset();
    const epoch = await this.store.get(META_EPOCH);
    if (epoch) this.epochId = epoch.toString();
    else {
      // A new store gets a new epoch, so ids stay unique even when a store was quarantined.
      this.epochId = randomBytes(4).toString('hex');
      await this.store.put(META_EPOCH, Buffer.from(this.epochId), { sync: true });
    }
    await this.counters.load(this.store);
    this.dedupe.load(await this.store.get(windowMetaKey(this.dedupe.name)));
    this.idempotency.load(await this.store.get(windowMetaKey(this.idempotency.name)));
    if (repaired) await this.recount();
    this.counters.settle();
  }

  /** Only after a repair (records may be gone): a full scan, once, to make the counters true again. */
  private async recount(): Promise<void> {
    this.log.warn('recounting the spool after repair', {});
    const salvaged = await this.counters.recount(this.store);
    const last = this.incidents[this.incidents.length - 1];
    if (last?.kind === 'repaired') last.reason += `; ${salvaged} messages salvaged`;
    await this.dedupe.recount(this.store);
    await this.idempotency.recount(this.store);
    await this.store.batch([...this.counters.allOps(), this.dedupe.metaOp(), this.idempotency.metaOp()], { sync: true });
    this.counters.markClean();
  }
}
