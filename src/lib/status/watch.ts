import { setTimeout as sleep } from 'node:timers/promises';

export interface WatchLoop<R> {
  intervalMs: number;
  round: () => Promise<R>;
  show: (r: R) => Promise<void> | void;
  /** After each round: the exit status it leaves (the last round's is the command's). */
  exit: (r: R) => void;
  /** A round that failed (a fleet being edited that does not load): reported, and the watch goes on. */
  failed: (e: unknown) => void;
  /** Aborted when the operator interrupts: the current wait ends at once, no new round starts. */
  signal: AbortSignal;
}

/**
 * `status --watch`: a round, shown, then a wait, until interrupted. Rounds never overlap: the
 * next waits for the last to finish, so a slow fleet is asked less often, never twice at once.
 */
export async function watchLoop<R>(o: WatchLoop<R>): Promise<void> {
  while (!o.signal.aborted) {
    try {
      const r = await o.round();
      if (o.signal.aborted) break;
      await o.show(r);
      o.exit(r);
    } catch (e) {
      if (o.signal.aborted) break;
      o.failed(e);
    }
    await sleep(o.intervalMs, undefined, { signal: o.signal }).catch(() => {});
  }
}
