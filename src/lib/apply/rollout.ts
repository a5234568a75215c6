import { EdgectlError } from '../errors.js';

export type CountOrPercent = number | string;

export interface RolloutOptions {
  canary: number;
  batch: CountOrPercent;
  maxFailures: CountOrPercent;
  concurrency: number;
}

/** "25%" of n (rounded up, at least 1 when n > 0) or a plain count. */
export function resolveCount(v: CountOrPercent, n: number, what: string): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new EdgectlError('EDGECTL_USAGE', `${what} must be a count or a percentage like 25%`);
    return v;
  }
  const m = /^(\d{1,3})%$/.exec(v.trim());
  if (m) {
    const p = Number(m[1]);
    if (p > 100) throw new EdgectlError('EDGECTL_USAGE', `${what} ${v}: a percentage is at most 100%`);
    return p === 0 ? 0 : Math.max(1, Math.ceil((n * p) / 100));
  }
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  throw new EdgectlError('EDGECTL_USAGE', `${what} "${v}" is not a count or a percentage like 25%`);
}

/** Canary nodes first (one batch), then batches of the rest. Pure. */
export function batches<T>(items: T[], o: Pick<RolloutOptions, 'canary' | 'batch'>): T[][] {
  const out: T[][] = [];
  const canary = Math.min(o.canary, items.length);
  if (canary > 0) out.push(items.slice(0, canary));
  const rest = items.slice(canary);
  const size = Math.max(1, resolveCount(o.batch, rest.length, '--batch') || rest.length);
  for (let i = 0; i < rest.length; i += size) out.push(rest.slice(i, i + size));
  return out;
}

/** The fleet's `spec.rollout`, as fleet.yaml spells it. */
export interface RolloutSpec {
  canary?: number;
  batchSize?: CountOrPercent;
  maxFailures?: CountOrPercent;
}

/** What the operator asked for (flags); unset ones come from the fleet. */
export type RolloutOverrides = Partial<Pick<RolloutOptions, 'canary' | 'batch' | 'maxFailures'>>;

/** Given values win over the fleet's spec.rollout, else: no canary, every node in one batch, no failure allowed. */
export function rolloutOf(given: RolloutOverrides, spec: RolloutSpec | undefined, concurrency: number): RolloutOptions {
  return {
    canary: given.canary ?? spec?.canary ?? 0,
    batch: given.batch ?? spec?.batchSize ?? '100%',
    maxFailures: given.maxFailures ?? spec?.maxFailures ?? 0,
    concurrency,
  };
}
