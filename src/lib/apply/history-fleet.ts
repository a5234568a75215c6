import { errorMessage } from '../errors.js';
import { resolvedNodes, type ResolvedNode } from '../fleet/model.js';
import { runNodes } from '../nodes/run-nodes.js';
import { findNode } from '../nodes/select.js';
import { selectedNodes } from './selected.js';
import type { FleetDeps, TargetOptions } from '../plan/index.js';
import { historyOf, type HistoryEntry } from '../release/history.js';
import { readState } from '../release/state.js';

export interface NodeHistory {
  node: string;
  reachable: boolean;
  error?: string;
  releases: HistoryEntry[];
}

/** The releases each selected node holds, newest first (one state read per node): what `rollback --to` can take. */
export async function historyFleet(deps: FleetDeps, o: TargetOptions): Promise<NodeHistory[]> {
  const { model, names } = await selectedNodes(o, { needs: 'history needs NODE… or --selector', none: 'no node matches --selector' });
  const resolved = resolvedNodes(model);
  const connector = deps.connect(model);
  try {
    return await runNodes<ResolvedNode, NodeHistory>(connector, names.map((n) => findNode(resolved, n)), {
      concurrency: o.concurrency,
      node: (n) => n.name,
      run: async (t, n) => ({ node: n.name, reachable: true, releases: historyOf(await readState(t, n.root)) }),
      unreachable: (n, e) => ({ node: n.name, reachable: false, error: errorMessage(e), releases: [] }),
    });
  } finally {
    await connector.close();
  }
}
