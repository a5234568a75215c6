import { createInterface } from 'node:readline/promises';

/** Asks on the terminal; only called when stdin and stderr are TTYs. */
export async function confirm(question: string): Promise<boolean> {
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
 * flight are finishing (or rolling back): no node is left between releases.
 */
export function interruptible(onFirst: () => void, say: (s: string) => void): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const handler = () => {
    if (!ac.signal.aborted) {
      ac.abort();
      onFirst();
    } else say('still waiting for nodes in flight to finish or roll back');
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { signal: ac.signal, dispose: () => (process.off('SIGINT', handler), process.off('SIGTERM', handler)) };
}
