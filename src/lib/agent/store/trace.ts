import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * Where a durable request's time goes (a measuring aid, off unless EDGECTL_INTAKE_TRACE names
 * a file): per-stage histograms of microseconds, rewritten to that file once a second as JSON.
 * Only for benchmarking the intake path; nothing reads it back.
 */
const FILE = process.env.EDGECTL_INTAKE_TRACE;
export const tracing = Boolean(FILE);
export const now: () => number = () => performance.now();

/** Log2 buckets of microseconds: bucket i holds [2^(i-1), 2^i) µs, bucket 0 below 1 µs. */
class Histogram {
  readonly buckets = new Array<number>(32).fill(0);
  n = 0;
  sum = 0;
  add(us: number): void {
    this.n++;
    this.sum += us;
    this.buckets[us < 1 ? 0 : Math.min(31, Math.floor(Math.log2(us)) + 1)]++;
  }
  summary(): { n: number; meanUs: number; p50Us: number; p90Us: number; p99Us: number } {
    const q = (f: number) => {
      let seen = 0;
      for (let i = 0; i < 32; i++) { seen += this.buckets[i]; if (seen >= f * this.n) return i === 0 ? 1 : 2 ** i; }
      return 2 ** 31;
    };
    return { n: this.n, meanUs: this.n ? Math.round(this.sum / this.n) : 0, p50Us: q(0.5), p90Us: q(0.9), p99Us: q(0.99) };
  }
}

const stages = new Map<string, Histogram>();
const elu0 = performance.eventLoopUtilization();

/** Records `ms` (a duration in milliseconds) under `stage`. */
export function record(stage: string, ms: number): void {
  let h = stages.get(stage);
  if (!h) stages.set(stage, (h = new Histogram()));
  h.add(ms * 1000);
}

if (FILE) {
  const t = setInterval(() => {
    const out: Record<string, unknown> = { eventLoopUtilization: performance.eventLoopUtilization(elu0).utilization };
    for (const [k, h] of stages) out[k] = h.summary();
    try { writeFileSync(FILE, JSON.stringify(out, null, 1)); } catch { /* a measuring aid: never fail the agent */ }
  }, 1000);
  t.unref();
}
