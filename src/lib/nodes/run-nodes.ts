import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';

/** Runs fn on each item with at most `limit` in flight. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

export interface NodeRun<T, R> {
  /** Nodes worked on at once. */
  concurrency: number;
  /** The node an item is about. */
  node: (item: T) => string;
  /** Asked first: a result here is the node's result, and the node is not connected to (skipped). */
  before?: (item: T) => R | undefined;
  /** The work on one node over its open transport; connectMs: how long opening it took. */
  run: (t: Transport, item: T, connectMs: number) => Promise<R>;
  /** The node's result when it cannot be reached: opening failed, or `run` threw (a lost connection). */
  unreachable: (item: T, error: unknown) => R;
  /** Each result as soon as it is known (progress). */
  onResult?: (item: T, r: R) => void;
}

/**
 * The fleet fan-out: each item's node opened through the connector, `run` on it, its transport
 * closed whatever happens, at most `concurrency` nodes at once. A node's failure is its result,
 * never an exception, so the other nodes go on. Results come back in item order.
 */
export async function runNodes<T, R>(connector: Pick<Connector, 'open'>, items: readonly T[], o: NodeRun<T, R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  await eachLimit(items.map((item, i) => ({ item, i })), o.concurrency, async ({ item, i }) => {
    out[i] = o.before?.(item) ?? (await runOne(connector, item, o));
    o.onResult?.(item, out[i]);
  });
  return out;
}

async function runOne<T, R>(connector: Pick<Connector, 'open'>, item: T, o: NodeRun<T, R>): Promise<R> {
  let t: Transport | undefined;
  const t0 = Date.now();
  try {
    t = await connector.open(o.node(item));
    return await o.run(t, item, Date.now() - t0);
  } catch (e) {
    return o.unreachable(item, e);
  } finally {
    await t?.close().catch(() => {});
  }
}
