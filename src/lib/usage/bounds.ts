import { EdgectlError } from '../errors.js';

export type Granularity = 'hour' | 'day' | 'month';
export const GRANULARITIES: readonly Granularity[] = ['hour', 'day', 'month'];

const MINUTE = 60_000;

/**
 * A time bound of `edgectl usage`, in UTC: `YYYY-MM` (the month's first instant), `YYYY-MM-DD`
 * (midnight), or an ISO 8601 date-time (`2026-12-01T10:00Z`, `…T10:00:00+01:00`; without an
 * offset it is UTC, never the local zone). Usage is stored per minute, so a bound must fall on a
 * whole minute: a bound inside a minute could not be honoured exactly and is refused.
 */
export function parseBound(flag: string, text: string): Date {
  const bad = (why: string) => new EdgectlError('EDGECTL_USAGE', `${flag} ${JSON.stringify(text.slice(0, 60))}: ${why}`, {
    hint: 'Give a UTC time as YYYY-MM, YYYY-MM-DD or an ISO 8601 date-time such as 2026-12-01T10:00Z.',
  });
  const t = text.trim();
  let ms: number;
  let m: RegExpMatchArray | null;
  if ((m = /^(\d{4})-(\d{2})$/.exec(t))) {
    ms = checked(Number(m[1]), Number(m[2]), 1, 0, 0, 0, bad);
  } else if ((m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t))) {
    ms = checked(Number(m[1]), Number(m[2]), Number(m[3]), 0, 0, 0, bad);
  } else if ((m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(t))) {
    const local = checked(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), bad);
    if (m[7] && Number(m[7]) !== 0) throw bad('usage is kept per minute: a bound must be a whole minute (no fraction of a second)');
    const off = m[8] && m[8].toUpperCase() !== 'Z' ? offsetMinutes(m[8], bad) : 0;
    ms = local - off * MINUTE;
  } else {
    throw bad('not a date (YYYY-MM, YYYY-MM-DD) or an ISO 8601 date-time');
  }
  if (ms % MINUTE !== 0) throw bad('usage is kept per minute: a bound must be a whole minute');
  return new Date(ms);
}

function checked(y: number, mo: number, d: number, h: number, mi: number, s: number, bad: (w: string) => Error): number {
  if (y < 1970 || y > 9999) throw bad('the year must be between 1970 and 9999');
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    throw bad('no such date or time');
  }
  return ms;
}

function offsetMinutes(o: string, bad: (w: string) => Error): number {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(o)!;
  const h = Number(m[2]);
  const mi = Number(m[3]);
  if (h > 23 || mi > 59) throw bad('no such UTC offset');
  return (m[1] === '-' ? -1 : 1) * (h * 60 + mi);
}

/** Start of the period (UTC) that holds `ms`. */
export function periodStart(ms: number, by: Granularity): number {
  const d = new Date(ms);
  if (by === 'hour') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
  if (by === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Start of the period after the one starting at `start`. */
export function periodEnd(start: number, by: Granularity): number {
  const d = new Date(start);
  if (by === 'hour') return start + 3_600_000;
  if (by === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}
