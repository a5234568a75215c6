import type { SpoolCore } from './core.js';
import type { Retention } from './retention.js';
import { messageKey } from './keys.js';
import { encodeRecord, encodeRun, type Run, type SpoolMessage } from './record.js';
import { SpoolFullError } from './errors.js';
import type { Op } from './window.js';

/** A run as it arrives from the previous hop (see forward/wire.ts): its bodies region as is. */
export interface IncomingRun extends Run {
  tenant: string;
  topic: string;
  bodies: Buffer;
}

export type IncomingItem = SpoolMessage | IncomingRun;

export interface ForwardedOptions {
  /** The authenticated previous hop: part of every dedupe key. */
  sender?: string;
  /** A tenant's quota in bytes; undefined: none. */
  quotaOf?: (tenant: string) => number | undefined;
  /** Tenants whose oldest messages make room for new ones instead of refusing the batch. */
  dropOldest?: (tenant: string) => boolean;
}

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

/** What a hop remembers to drop repeats: the message id, or for a run its first id and count ('+' is never in an id). */
const dedupeKey = (x: IncomingItem) => (isRun(x) ? `${x.idPrefix}${x.first}+${x.count}` : x.id);

const SEEN = Buffer.from('1');

/** Messages and runs from the previous hop into the store: ids kept, repeats dropped. */
export class ForwardedAppend {
  /** Dedupe keys whose write is in flight, with that write: a repeat waits for it, never assumes it. */
  private idsInflight = new Map<string, Promise<void>>();

  constructor(private readonly core: SpoolCore, private readonly retention: Retention) {}

  /**
   * Repeats (by id, or by a run's first id and count, in a bounded window on disk) skipped. A
   * run is stored as one record, as it came. Repeats are remembered per sender: what one node
   * sends can never make another's ids "seen".
   */
  async appendForwarded(items: IncomingItem[], opts: ForwardedOptions = {}): Promise<{ accepted: number; duplicates: number }> {
    const { core } = this;
    core.assertOpen();
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
    // its copy even if that write then failed: wait for the write, then look on disk. Inline on
    // purpose: no await may come between this answer and the write below.
    let existing: (Buffer | undefined)[];
    for (;;) {
      const writes = new Set<Promise<void>>();
      for (const k of keys) {
        const w = this.idsInflight.get(k);
        if (w) writes.add(w);
      }
      if (writes.size > 0) {
        await Promise.allSettled(writes);
        core.assertOpen();
        continue;
      }
      existing = await core.dedupe.getMany(core.db, keys);
      core.assertOpen();
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
      if (quota !== undefined && core.counters.tenantUsed(tenant) + n > quota) throw new SpoolFullError(`tenant ${tenant} spool quota of ${quota} bytes is full`);
    }
    const ops: Op[] = [];
    let accepted = 0;
    for (let i = 0; i < fresh.length; i++) {
      const m = fresh[i];
      const q = core.counters.queue(m.tenant, m.topic);
      const count = isRun(m) ? m.count : 1;
      const rec = isRun(m) ? encodeRun(m, m.bodies) : encodeRecord(m.id, m.contentType, m.ts, m.body);
      ops.push({ type: 'put', key: messageKey(q.prefix, core.counters.reserveSeqs(count)), value: rec });
      core.counters.addBytes(q, count, rec.length);
      core.dedupe.add(ops, freshKeys[i], SEEN);
      accepted += count;
    }
    const write = core.commit(ops);
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
      await this.retention.makeRoom(this.core.counters.ofTenant(tenant), () => this.core.counters.tenantUsed(tenant) + n - quota);
    }
  }
}
