import type { Db } from './open.js';
import { readU64, windowEntryKey, windowMetaKey, windowOrderKey } from './keys.js';

export type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/**
 * A bounded set kept on disk: message ids already accepted (dedupe at every hop) and
 * idempotency keys. Entries are evicted oldest-first once more than `max` are held, so the
 * store never grows without bound. Its counters are written in the same batch as its entries.
 */
export class DedupeWindow {
  head = 0;
  tail = 0;
  dirty = false;

  constructor(readonly name: string, readonly max: number) {}

  get size(): number {
    return this.tail - this.head;
  }

  load(meta: Buffer | undefined): void {
    if (!meta) return;
    const m = JSON.parse(meta.toString()) as { head: number; tail: number };
    this.head = m.head;
    this.tail = m.tail;
  }

  metaOp(): Op {
    this.dirty = false;
    return { type: 'put', key: windowMetaKey(this.name), value: Buffer.from(JSON.stringify({ head: this.head, tail: this.tail })) };
  }

  add(ops: Op[], entry: string, value: Buffer): void {
    ops.push({ type: 'put', key: windowEntryKey(this.name, entry), value });
    ops.push({ type: 'put', key: windowOrderKey(this.name, this.tail), value: Buffer.from(entry, 'latin1') });
    this.tail++;
    this.dirty = true;
  }

  async getMany(db: Db, entries: string[]): Promise<(Buffer | undefined)[]> {
    if (entries.length === 0) return [];
    return db.getMany(entries.map((e) => windowEntryKey(this.name, e)));
  }

  /** Ops that drop the oldest entries beyond `max` (at most `page` per call). */
  async evictOps(db: Db, page = 5000): Promise<Op[]> {
    const excess = Math.min(this.size - this.max, page);
    if (excess <= 0) return [];
    const ops: Op[] = [];
    const it = db.iterator({ gte: windowOrderKey(this.name, this.head), lt: windowOrderKey(this.name, this.head + excess) });
    try {
      for (const [k, v] of await it.nextv(excess)) {
        ops.push({ type: 'del', key: k }, { type: 'del', key: windowEntryKey(this.name, v.toString('latin1')) });
      }
    } finally {
      await it.close();
    }
    this.head += excess;
    this.dirty = true;
    return ops;
  }

  /** After a LevelDB repair: rebuild head/tail from the order keys that survived. */
  async recount(db: Db): Promise<void> {
    const lo = windowOrderKey(this.name, 0);
    const hi = windowOrderKey(this.name, Number.MAX_SAFE_INTEGER);
    for await (const k of db.keys({ gte: lo, lt: hi, limit: 1 })) this.head = readU64(k, k.length - 8);
    for await (const k of db.keys({ gte: lo, lt: hi, limit: 1, reverse: true })) this.tail = readU64(k, k.length - 8) + 1;
    if (this.tail < this.head) this.tail = this.head;
  }
}
