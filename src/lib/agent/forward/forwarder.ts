import type { Spool } from '../store/spool.js';
import type { Logger } from '../../logger.js';
import type { AgentStats } from '../stats.js';
import { type Deliverer, DeliveryError } from './deliverer.js';
import { errorMessage } from '../../errors.js';
import { INTERNAL_TENANT } from './wire.js';

export interface ForwarderOptions {
  maxMessages: number;
  maxBytes: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

const PRIORITY = new Set([INTERNAL_TENANT]);

/**
 * Moves batches from the spool to the deliverer, one batch in flight so per-topic order holds
 * across retries. A batch is deleted only after the deliverer resolved (2xx / sink ack). Failures
 * back off exponentially with full jitter, never less than the Retry-After the other side asked for.
 */
export class Forwarder {
  private stopped = false;
  private running?: Promise<void>;
  /** Ends the current sleep: set while waiting for data, not while backing off. */
  private wake?: () => void;
  /** Ends any sleep (stop). */
  private interrupt?: () => void;
  private failures = 0;

  constructor(private spool: Spool, private out: Deliverer, private stats: AgentStats, private log: Logger, private opts: ForwarderOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  notify(): void {
    this.wake?.();
  }

  private sleep(ms: number, wakeable = true): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = this.interrupt = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.interrupt = done;
      // New data must not cut a backoff short: every POST would otherwise retry a dead upstream.
      if (wakeable) this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.spool.state !== 'open') { await this.sleep(200); continue; }
      let batch;
      try {
        batch = await this.spool.readBatch(this.opts.maxMessages, this.opts.maxBytes, PRIORITY);
      } catch (err) {
        this.log.error('reading the spool failed', { error: errorMessage(err) });
        await this.sleep(500);
        continue;
      }
      if (batch.records.length === 0) { await this.sleep(100); continue; }
      try {
        await this.out.deliver(batch);
      } catch (err) {
        this.failures++;
        this.stats.forwardErrors++;
        this.stats.lastForwardError = { at: new Date().toISOString(), message: errorMessage(err) };
        const base = this.opts.baseDelayMs ?? 200;
        const cap = this.opts.maxDelayMs ?? 30_000;
        const backoff = Math.random() * Math.min(cap, base * 2 ** Math.min(this.failures, 20));
        const wait = Math.max(backoff, err instanceof DeliveryError ? (err.retryAfterMs ?? 0) : 0);
        if (this.failures <= 3 || this.failures % 20 === 0) this.log.warn('delivery failed; will retry', { error: errorMessage(err), failures: this.failures, waitMs: Math.round(wait) });
        await this.sleep(wait, false);
        continue;
      }
      this.failures = 0;
      this.stats.forwardedMessages += batch.count;
      this.stats.forwardedBatches++;
      this.stats.lastForwardAt = Date.now();
      this.stats.lastForwardTo = this.out.name;
      try {
        await this.spool.ack(batch);
      } catch (err) {
        // Not deleted (the failed write reopens the store and reloads its cursors): they will be
        // sent again and the next hop drops them by id.
        this.log.error('deleting a delivered batch failed', { error: errorMessage(err) });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.interrupt?.();
    await this.running;
    await this.out.close();
  }
}
