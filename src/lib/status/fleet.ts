import { EdgectlError } from '../errors.js';
import type { FleetModel, ResolvedNode } from '../fleet/model.js';
import { resolvedNodes } from '../fleet/model.js';
import { runGit } from '../fleet/git.js';
import { localModel } from '../nodes/local-mode.js';
import { runNodes } from '../nodes/run-nodes.js';
import { selectNodes } from '../nodes/select.js';
import type { FleetDeps, TargetOptions } from '../plan/index.js';
import { observeNode, unreachableStatus, type Behind } from './live.js';
import { STATUS_FORMAT, summarise, type NodeStatus, type StatusReport } from './types.js';

export interface StatusOptions extends TargetOptions {
  /** Each node's row as soon as it is known (progress). */
  onResult?: (n: NodeStatus) => void;
}

/** The fleet read for its nodes (no render), local mode applied, the nodes named or selected (none named: all). */
export async function statusTargets(o: Pick<TargetOptions, 'fleet' | 'nodes' | 'selector' | 'local'>): Promise<{ model: FleetModel; nodes: ResolvedNode[] }> {
  const { loadFleet } = await import('../fleet/load.js');
  const loaded = await loadFleet(o.fleet);
  const model = o.local ? localModel(loaded.model, o.local) : loaded.model;
  const names = new Set(selectNodes(model.nodes, { nodes: o.nodes, selector: o.selector }).map((n) => n.name));
  if (names.size === 0) throw new EdgectlError('EDGECTL_USAGE', 'no node matches --selector');
  return { model, nodes: [...resolvedNodes(model).values()].filter((n) => names.has(n.name)) };
}

/** How a node is reached, as the rows show it. */
export function pathText(n: Pick<ResolvedNode, 'tunnel'>, route: string[]): string {
  if (route.length === 1 && route[0] === 'local') return 'local';
  const relays = route.slice(0, -1);
  if (n.tunnel === 'reverse') return `tunnel via ${relays.join(' > ')}`;
  return relays.length ? `via ${relays.join(' > ')}` : 'direct';
}

/**
 * Commits HEAD is ahead of a node's commit, asked of git once per distinct commit. The commit
 * came from the node, but only after parsing as hex (parse.ts), so it reaches git as a revision,
 * never as an option.
 */
export function behindCounter(fleetRoot: string, head: string | undefined): Behind {
  const memo = new Map<string, Promise<number | null>>();
  return (commit) => {
    if (!commit || !head || !/^[0-9a-f]{7,64}(-dirty)?$/.test(commit)) return Promise.resolve(null);
    const c = commit.replace(/-dirty$/, '');
    if (head.startsWith(c)) return Promise.resolve(0);
    let p = memo.get(c);
    if (!p) {
      p = runGit(fleetRoot, ['rev-list', '--count', `${c}..${head}`]).then((b) => {
        const n = Number(b.toString().trim());
        return Number.isInteger(n) ? n : null;
      }, () => null);
      memo.set(c, p);
    }
    return p;
  };
}

/** `edgectl status`, live: one exec per selected node (concurrency bounded), a row each, unreachable ones too. */
export async function statusFleet(deps: FleetDeps, o: StatusOptions): Promise<StatusReport> {
  const { model, nodes } = await statusTargets(o);
  const connector = deps.connect(model);
  const behind = behindCounter(o.fleet, model.commit);
  try {
    const ctx = (n: ResolvedNode) => {
      let path: string;
      try {
        path = pathText(n, connector.route(n.name));
      } catch {
        path = n.via.length ? `via ${n.via.join(' > ')}` : 'direct';
      }
      return { node: n, path, behind };
    };
    const rows = await runNodes<ResolvedNode, NodeStatus>(connector, nodes, {
      concurrency: o.concurrency,
      node: (n) => n.name,
      run: (t, n) => observeNode(t, ctx(n)),
      unreachable: (n, e) => unreachableStatus(ctx(n), e),
      onResult: (_, r) => o.onResult?.(r),
    });
    return { format: STATUS_FORMAT, source: 'live', at: deps.now().toISOString(), fleet: { name: model.name, commit: model.commit ?? null, dirty: model.dirty }, nodes: rows, summary: summarise(rows) };
  } finally {
    await connector.close();
  }
}
