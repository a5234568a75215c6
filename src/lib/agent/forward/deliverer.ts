import type { Batch } from '../store/spool.js';

/** Where a batch goes next: the next hop (edge, relay) or the sink (hub). Resolves only once it is safe there. */
export interface Deliverer {
  readonly name: string;
  /** Hops pass whole records on; sinks take `batch.messages()`. */
  deliver(batch: Pick<Batch, 'records' | 'messages'>): Promise<void>;
  close(): Promise<void>;
}

/** A failed delivery; retryAfterMs when the other side said how long to wait. */
export class DeliveryError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, opts?: { cause?: unknown }) {
    super(message, opts);
  }
}

export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Math.min(Number(s) * 1000, 300_000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.min(Math.max(0, t - now), 300_000);
}
