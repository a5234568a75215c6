import { errorMessage, EdgectlError } from '../errors.js';
import { resolvedNodes, type ResolvedNode } from '../fleet/model.js';
import { localModel } from '../nodes/local-mode.js';
import { runNodes } from '../nodes/run-nodes.js';
import { findNode, selectNodes } from '../nodes/select.js';
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
  if (!o.nodes?.length && !o.selector) throw new EdgectlError('EDGECTL_USAGE', 'history needs NODE… or --selector');
  const { loadFleet } = await import('../fleet/load.js');
  const loaded = await loadFleet(o.fleet);
  const model = o.local ? localModel(loaded.model, o.local) : loaded.model;
  const names = selectNodes(model.nodes, { nodes: o.nodes, selector: o.selector }).map((n) => n.name);
  if (names.length === 0) throw new EdgectlError('EDGECTL_USAGE', 'no node matches --selector');
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
