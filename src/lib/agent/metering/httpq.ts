import { INTERNAL_TENANT } from '../forward/wire.js';
import { minuteOf, type MinuteAgg } from './minutes.js';

/**
 * HTTPQ intake metering. The store counts, per queue, the device messages and body bytes it ever
 * stored, and writes those totals in the same synced batch as the messages (store/counters.ts
 * intake): what they say is exactly what was acknowledged, a crash included, at no cost on the
 * intake path. Metering keeps the totals it last shipped (`base`) and, once a minute is over,
 * ships the difference as that minute, writing the new base in the batch that stores the usage
 * messages. After a crash, what was acknowledged since the last shipped minute goes into the
 * minute metering resumes in: per-minute placement may shift, totals never do.
 */
export interface HttpqPosition {
  /** The minute being counted (its start, ms). */
  minute: number;
  /** "tenant\0topic" → [messages, body bytes] as of the last shipped minute. */
  base: Record<string, [number, number]>;
}

export interface IntakeTotals { tenant: string; topic: string; c: { intake: number; intakeBytes: number } }

export function httpqStep(pos: HttpqPosition | undefined, queues: Iterable<IntakeTotals>, now: number): { pos: HttpqPosition; closed: MinuteAgg[] } {
  const current = minuteOf(now);
  if (!pos) return { pos: { minute: current, base: {} }, closed: [] };
  if (current <= pos.minute) return { pos, closed: [] };
  const closed: MinuteAgg[] = [];
  const base: HttpqPosition['base'] = {};
  for (const q of queues) {
    if (q.tenant === INTERNAL_TENANT) continue;
    const key = `${q.tenant}\u0000${q.topic}`;
    const [n0, b0] = pos.base[key] ?? [0, 0];
    // Totals only grow; smaller ones mean a new store (quarantined): count from zero.
    const n = q.c.intake >= n0 ? q.c.intake - n0 : q.c.intake;
    const b = q.c.intakeBytes >= b0 ? q.c.intakeBytes - b0 : q.c.intakeBytes;
    base[key] = [q.c.intake, q.c.intakeBytes];
    if (n === 0) continue;
    closed.push({ tenant: q.tenant, app: q.topic, minute: pos.minute, requests: n, bytesIn: b, bytesOut: 0, status: [0, n, 0, 0, 0], hit: 0, miss: 0, up: {}, upMax: -1 });
  }
  return { pos: { minute: current, base }, closed };
}
