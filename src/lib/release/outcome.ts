import type { Outcome } from './activate.js';

/**
 * Did this node succeed: the one rule behind every exit status, failure budget and summary.
 * A node that was never started (skipped) did not, nor did one refused (stale, locked).
 */
export function isSuccess(outcome: Outcome): boolean {
  return outcome === 'applied' || outcome === 'unchanged';
}
