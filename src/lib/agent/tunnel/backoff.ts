/**
 * Reconnect delays: exponential with full jitter (a uniform draw between 0 and base·2^attempt,
 * capped), so that a relay that comes back is not hit by every node behind it at the same instant.
 * Pure: the random draw is passed in.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  // 2^attempt overflows to Infinity long before attempt does; min() keeps it at the cap.
  const ceiling = Math.min(p.capMs, p.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
