import { createInterface } from 'node:readline/promises';
import { EdgectlError } from '../lib/errors.js';
import { Declined } from './declined.js';

export { Declined };

/**
 * The one confirmation of every command that changes things (apply, rollback, drift --fix, spool
 * purge): nothing to ask with --yes; off a terminal (stdin and stderr, where the question goes) it
 * refuses, as a cron job must not hang; else `ask` shows what would change and gives the question.
 * A "no" throws Declined: nothing changed, no error block.
 */
export async function ensureConfirmed(o: { yes?: boolean; offTerminal: string; ask: () => string | Promise<string>; declinedExit?: number }): Promise<void> {
  if (o.yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new EdgectlError('EDGECTL_NOT_CONFIRMED', o.offTerminal);
  if (!(await confirm(await o.ask()))) throw new Declined(o.declinedExit);
}

/** Asks on the terminal; only called when stdin and stderr are TTYs. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

/**
 * Ctrl-C during a rollout: the first stops starting new nodes, later ones only say that nodes in
 * flight are finishing (or rolling back): no node is left between releases. Armed only once the
 * rollout is confirmed, so that Ctrl-C while planning or at the prompt still just quits.
 */
export function interruptible(onFirst: () => void, say: (s: string) => void): { signal: AbortSignal; arm: () => void; dispose: () => void } {
  const ac = new AbortController();
  const handler = () => {
    if (!ac.signal.aborted) {
      ac.abort();
      onFirst();
    } else say('still waiting for nodes in flight to finish or roll back');
  };
  let armed = false;
  const arm = () => {
    if (armed) return;
    armed = true;
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  };
  return { signal: ac.signal, arm, dispose: () => (process.off('SIGINT', handler), process.off('SIGTERM', handler)) };
}
