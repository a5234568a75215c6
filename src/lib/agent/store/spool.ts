import { SpoolCore, type SpoolOptions, type SpoolState } from './core.js';
import type { StoreIncident } from './open.js';
import { type AppendedIds, DeviceAppend, type AppendOptions, type LineBatch, type NewMessage } from './append.js';
import { ForwardedAppend, type ForwardedOptions, type IncomingItem } from './forwarded.js';
import { Reader, type Batch } from './read.js';
import { Retention, type PurgedQueue } from './retention.js';
import { queueStatus, type QueueStatus } from './queue-status.js';
import type { SpoolMessage } from './record.js';
import { commitOwnMeta, getOwnMeta, putOwnMeta } from './meta.js';
import type { Op } from './window.js';

export type { SpoolOptions, SpoolState } from './core.js';
export type { AppendedIds, AppendOptions, LineBatch, NewMessage } from './append.js';
export { firstId, idList } from './append.js';
export type { ForwardedOptions, IncomingItem, IncomingRun } from './forwarded.js';
export { Batch, type ReadRecord } from './read.js';
export type { PurgedQueue } from './retention.js';
export type { QueueStatus } from './queue-status.js';

/**
 * The on-disk queue (HTTPQ's spool), as the agent uses it. Each concept lives in its own file:
 * core.ts (lifecycle, recovery), group-commit.ts (pipelined: written in order, synced by log-sync.ts), counters.ts,
 * append.ts (device messages), forwarded.ts (from the previous hop, deduplicated), read.ts
 * (read and acknowledge), retention.ts (drop-oldest, TTL, purge, windows, compaction).
 */
export class Spool {
  /** The shared state of the parts above: for them and for the store's own tests, not for callers. */
  readonly core: SpoolCore;
  private readonly retention: Retention;
  private readonly device: DeviceAppend;
  private readonly forwarded: ForwardedAppend;
  private readonly reader: Reader;

  constructor(opts: SpoolOptions) {
    this.core = new SpoolCore(opts);
    this.retention = new Retention(this.core);
    this.device = new DeviceAppend(this.core, this.retention);
    this.forwarded = new ForwardedAppend(this.core, this.retention);
    this.reader = new Reader(this.core);
  }

  get state(): SpoolState {
    return this.core.state;
  }

  get epoch(): string {
    return this.core.epoch;
  }

  /** Repairs and quarantines met while opening (kept, never deleted). */
  get incidents(): readonly StoreIncident[] {
    return this.core.incidents;
  }

  get writeErrors(): number {
    return this.core.writeErrors;
  }

  get lastWriteError(): { at: string; message: string } | undefined {
    return this.core.lastWriteError;
  }

  /** Batches written, fdatasyncs of the log, the most batches in flight at once (group-commit.ts). */
  get commitStats(): { batches: number; syncs: number; fdatasyncs: number; maxInFlight: number } {
    return this.core.commitStats;
  }

  open(): Promise<void> {
    return this.core.open();
  }

  close(): Promise<void> {
    return this.core.close();
  }

  /** Device messages: new ids (node:epoch:seq), all or nothing, resolved once synced. */
  append(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts?: AppendOptions): Promise<string[]> {
    return this.device.append(tenant, topic, msgs, opts);
  }

  /** As append, with the ids as a range when they are new (see AppendedIds). */
  appendIds(tenant: string, topic: string, msgs: NewMessage[] | LineBatch, opts?: AppendOptions): Promise<AppendedIds> {
    return this.device.appendIds(tenant, topic, msgs, opts);
  }

  /** Messages and runs from the previous hop: ids kept, repeats per sender skipped. */
  appendForwarded(items: IncomingItem[], opts?: ForwardedOptions): Promise<{ accepted: number; duplicates: number }> {
    return this.forwarded.appendForwarded(items, opts);
  }

  readBatch(maxMessages: number, maxBytes: number, priority?: ReadonlySet<string>): Promise<Batch> {
    return this.reader.readBatch(maxMessages, maxBytes, priority);
  }

  ack(batch: Batch): Promise<void> {
    return this.reader.ack(batch);
  }

  peek(tenant: string, topic: string, limit: number): Promise<(SpoolMessage & { seq: number })[]> {
    return this.reader.peek(tenant, topic, limit);
  }

  purge(tenant?: string, topic?: string): Promise<PurgedQueue[]> {
    return this.retention.purge(tenant, topic);
  }

  /** Drops a queue's messages older than `olderThan` (ms since the epoch); returns how many. */
  expire(tenant: string, topic: string, olderThan: number): Promise<number> {
    return this.retention.removeOldest(this.core.counters.queue(tenant, topic), { olderThan }, 'expired');
  }

  /** Drops a queue's oldest messages until `bytes` are freed (counted as dropped); returns how many. */
  dropOldest(tenant: string, topic: string, bytes: number): Promise<number> {
    return this.retention.removeOldest(this.core.counters.queue(tenant, topic), { bytes }, 'dropped');
  }

  /** Keeps the dedupe and idempotency windows within their bounds. */
  evictWindows(): Promise<void> {
    return this.retention.evictWindows();
  }

  compactIfDue(every?: number): Promise<void> {
    return this.retention.compactIfDue(every);
  }

  /** Agent state kept in the store (meta.ts): read, and written alone or with an append (AppendOptions.alsoWrite). */
  getMeta(name: string): Promise<Buffer | undefined> {
    return getOwnMeta(this.core, name);
  }

  metaOp(name: string, value: Buffer): Op {
    return putOwnMeta(name, value);
  }

  putMeta(ops: Op[]): Promise<void> {
    return commitOwnMeta(this.core, ops);
  }

  /** Every queue's counters, as they stand in memory (metering reads the intake totals). */
  queues(): Iterable<{ tenant: string; topic: string; c: { bytes: number; intake: number; intakeBytes: number } }> {
    return this.core.counters.queues.values();
  }

  status(now?: number): Promise<QueueStatus[]> {
    return queueStatus(this.core, now);
  }
}
