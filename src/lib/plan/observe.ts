import { errorMessage } from '../errors.js';
import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';
import { layout } from '../release/layout.js';
import { readRelease } from '../release/read.js';
import { outputOf } from '../release/remote.js';
import { readState } from '../release/state.js';
import { isDiffable, type DesiredNode, type ObservedNode } from './compute.js';

/** Runs fn on each item with at most `limit` in flight. */
export async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * Reads every node's state concurrently (one round trip each, plus the current bytes of the
 * files a diff shows). An unreachable node is a result, not an error.
 */
export async function observeNodes(connector: Connector, desired: DesiredNode[], opts: { concurrency: number; diff: boolean }): Promise<Map<string, ObservedNode>> {
  const out = new Map<string, ObservedNode>();
  await eachLimit(desired, opts.concurrency, async (d) => {
    let t: Transport | undefined;
    try {
      t = await connector.open(d.node);
      const state = await readState(t, d.root);
      const o: ObservedNode = { reachable: true, state };
      if (opts.diff && state.current && state.currentManifest && state.currentManifest.digest !== d.manifest.digest) {
        const cm = state.currentManifest;
        const want = (p: string) => isDiffable(p) && (!d.manifest.files[p] || d.manifest.files[p].sha256 !== cm.files[p].sha256);
        const files = await readRelease(t, layout(d.root).release(state.current), cm, want);
        o.files = new Map(files.map((f) => [f.path, f.data]));
      }
      out.set(d.node, o);
    } catch (e) {
      const more = outputOf(e);
      out.set(d.node, { reachable: false, error: errorMessage(e) + (more ? `: ${more}` : '') });
    } finally {
      await t?.close().catch(() => {});
    }
  });
  return out;
}
