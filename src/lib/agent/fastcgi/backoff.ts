/**
 * When to start a FastCGI process again after it exited. An exit with status 0 after it ran a
 * while is a process that finished its work (php-cgi after PHP_FCGI_MAX_REQUESTS requests): it
 * is replaced at once and is not a crash. Anything else is a crash: the delay doubles from
 * firstMs up to maxMs with each crash in a row, and the count starts over once a process stayed
 * up stableMs. A process that exits 0 at once is counted as a crash too, or `true` would spin.
 */
export interface BackoffPolicy {
  firstMs: number;
  maxMs: number;
  stableMs: number;
  /** A status-0 exit after at least this long is a normal end. */
  normalAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { firstMs: 500, maxMs: 30_000, stableMs: 10_000, normalAfterMs: 1_000 };

export interface Exit {
  code?: number | null;
  signal?: string | null;
  error?: string;
  uptimeMs: number;
}

export function isCrash(e: Exit, p: BackoffPolicy): boolean {
  return !(e.code === 0 && !e.signal && !e.error && e.uptimeMs >= p.normalAfterMs);
}

/** The crashes-in-a-row count after this exit, and the delay before the next start. */
export function nextStart(crashesBefore: number, e: Exit, p: BackoffPolicy): { crashes: number; delayMs: number } {
  const base = e.uptimeMs >= p.stableMs ? 0 : crashesBefore;
  if (!isCrash(e, p)) return { crashes: base, delayMs: 0 };
  const crashes = base + 1;
  return { crashes, delayMs: Math.min(p.maxMs, p.firstMs * 2 ** Math.min(crashes - 1, 30)) };
}
