import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import type { Spool } from '../store/spool.js';
import { INTERNAL_TENANT } from '../forward/wire.js';
import { USAGE_TOPIC } from '../telemetry.js';
import { AccessLog, type LogPosition } from './access-log.js';
import { httpqStep, type HttpqPosition } from './httpq.js';
import { closableBefore, closeMinutes, emptyMinutes, LineCounter, usageOf, type Minutes } from './minutes.js';

/** The store key of metering's state (store/meta.ts). */
export const METER_META = 'metering';
/** Usage messages waiting in the spool, at most: past it metering waits (nothing is dropped, nothing skipped). */
export const USAGE_QUOTA = 64 << 20;

/** Everything metering must not forget: written in the batch that stores the usage it produced. */
export interface MeterState {
  v: 1;
  nginx?: LogPosition & { minutes: Minutes };
  httpq?: HttpqPosition;
}

export interface MeterOptions {
  node: string;
  /** nginx's access log; absent: no nginx metering. */
  accessLog?: { path: string; pidFile: string; rotateBytes: number; drainMs?: number; maxBytes?: number };
  httpq: boolean;
  graceMs: number;
}

/**
 * Metering: each call reads what is new (nginx's access log, the store's intake totals), closes
 * the minutes that are over, and stores their UsageMinute messages and its new state in one
 * synced batch. A call that fails (the store full or down, a file unreadable) changes nothing:
 * the next one starts again from what is on disk, so a crash, even SIGKILL, neither skips nor
 * counts twice, and a minute is shipped once with the counts it will always have.
 */
export class Meter {
  private state?: MeterState;
  private readonly access?: AccessLog;
  private readonly lines = new LineCounter();
  /** For /status and the tests. */
  readonly stats = { ticks: 0, shipped: 0, failures: 0 };

  constructor(private readonly spool: Spool, private readonly o: MeterOptions, private readonly log: Logger) {
    if (o.accessLog) this.access = new AccessLog(o.accessLog, log);
  }

  /** How many usage messages it stored. */
  async tick(now = Date.now()): Promise<number> {
    this.stats.ticks++;
    try {
      this.state ??= await this.load();
      const next = structuredClone(this.state);
      const closed = [];
      let caughtUp = false;
      if (this.access) {
        const pos = (next.nginx ??= { file: null, offset: 0, garbage: 0, unattributed: 0, minutes: emptyMinutes() });
        // The app's id as edgectl names it everywhere (render/context.ts appId: apps/<tenant>.<app>).
        caughtUp = await this.access.read(pos, now, (l) => this.lines.add(pos.minutes, l));
        for (const a of closeMinutes(pos.minutes, closableBefore(pos.minutes, now, caughtUp, this.o.graceMs))) closed.push(usageOf(a, this.o.node, 'nginx'));
      }
      if (this.o.httpq) {
        const h = httpqStep(next.httpq, this.spool.queues(), now);
        next.httpq = h.pos;
        for (const a of h.closed) closed.push(usageOf(a, this.o.node, 'httpq'));
      }
      const value = Buffer.from(JSON.stringify(next));
      if (value.equals(Buffer.from(JSON.stringify(this.state)))) return 0;
      const op = this.spool.metaOp(METER_META, value);
      if (closed.length > 0) {
        await this.spool.append(INTERNAL_TENANT, USAGE_TOPIC, closed.map((u) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify(u)) })), { quotaBytes: USAGE_QUOTA + this.otherInternalBytes(), whenFull: 'reject', alsoWrite: [op] });
      } else {
        await this.spool.putMeta([op]);
      }
      this.state = next;
      this.stats.shipped += closed.length;
      // Behind or not: the reader follows the file it is on by inode, so a log renamed under it is
      // read to its end as PATH.1, and the next rotation waits until it is back on the live file.
      // (Rotating only once caught up let a log nginx fills faster than one step reads grow unbounded.)
      if (this.access && next.nginx) await this.access.rotateIfDue(next.nginx, now);
      return closed.length;
    } catch (err) {
      // Forget what was read: the next call starts again from the store's copy.
      this.state = undefined;
      this.stats.failures++;
      this.log.warn('metering step failed; it starts again from its last stored position', { error: errorMessage(err) });
      return 0;
    }
  }

  /** The current state as stored (for /status). */
  get position(): Readonly<MeterState> | undefined {
    return this.state;
  }

  private async load(): Promise<MeterState> {
    const raw = await this.spool.getMeta(METER_META);
    if (!raw) return { v: 1 };
    try {
      const s = JSON.parse(raw.toString()) as MeterState;
      if (s && s.v === 1) return s;
    } catch { /* below */ }
    this.log.error('metering state in the store is unreadable; starting over', {});
    return { v: 1 };
  }

  /** The tenant quota counts all of INTERNAL_TENANT's topics: usage gets its own room beside heartbeats. */
  private otherInternalBytes(): number {
    let n = 0;
    for (const q of this.spool.queues()) if (q.tenant === INTERNAL_TENANT && q.topic !== USAGE_TOPIC) n += q.c.bytes;
    return n;
  }
}
