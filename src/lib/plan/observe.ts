import type { Connector } from '../transport/connect.js';
import { runNodes } from '../nodes/run-nodes.js';
import { layout } from '../release/layout.js';
import { readRelease } from '../release/read.js';
import { failureText } from '../release/remote.js';
import { readState } from '../release/state.js';
import { isClean } from '../release/stage.js';
import { releaseName } from '../bundle/manifest.js';
import { isDiffable, type DesiredNode, type ObservedNode } from './compute.js';

/**
 * Reads every node's state concurrently (one round trip each, plus the current bytes of the
 * files a diff shows). An unreachable node is a result, not an error.
 */
export async function observeNodes(connector: Connector, desired: DesiredNode[], opts: { concurrency: number; diff: boolean }): Promise<Map<string, ObservedNode>> {
  const observed = await runNodes(connector, desired, {
    concurrency: opts.concurrency,
    node: (d) => d.node,
    unreachable: (_d, e): ObservedNode => ({ reachable: false, error: failureText(e) }),
    run: async (t, d) => {
      // Current is checked against the desired manifest in the same round trip when it is that release:
      // a file edited by hand on the node is a change to plan (and for apply to repair).
      const state = await readState(t, d.root, { verify: { name: releaseName(d.manifest.digest), manifest: d.manifest } });
      const o: ObservedNode = { reachable: true, state };
      const cm = state.currentManifest;
      if (opts.diff && state.current && cm && cm.digest !== d.manifest.digest) {
        const want = (p: string) => isDiffable(p) && (!d.manifest.files[p] || d.manifest.files[p].sha256 !== cm.files[p].sha256);
        const files = await readRelease(t, layout(d.root).release(state.current), cm, want);
        o.files = new Map(files.map((f) => [f.path, f.data]));
      } else if (opts.diff && state.current && state.currentVerify && !isClean(state.currentVerify)) {
        const v = state.currentVerify;
        const edited = new Set([...v.modified, ...v.modeChanged]);
        const files = await readRelease(t, layout(d.root).release(state.current), d.manifest, (p) => isDiffable(p) && edited.has(p));
        o.files = new Map(files.map((f) => [f.path, f.data]));
      }
      return o;
    },
  });
  return new Map(desired.map((d, i) => [d.node, observed[i]]));
}
