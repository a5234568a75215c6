import type { Manifest } from '../bundle/manifest.js';
import { EdgectlError, errorMessage } from '../errors.js';
import { resolvedNodes, type FleetModel, type ResolvedNode } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { findNode } from '../nodes/select.js';
import { runNodes } from '../nodes/run-nodes.js';
import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';
import { activateRelease, type NodeResult } from './activate.js';
import { layout, manifestPath } from './layout.js';
import { nginxTargetOf } from './nginx.js';
import { makeHolder } from './lock.js';
import { parseManifest } from './manifest-parse.js';
import { noTransfer } from './stage.js';
import { readState, type NodeState } from './state.js';

export interface RollbackOptions {
  /** Release name, digest prefix (7+ hex digits) or fleet commit prefix; default: the release before current. */
  to?: string;
  logger: Logger;
}

/**
 * Switches a node back to a release it still holds, validating and health-checking it like
 * apply. Needs the node's address and root only: no git server, no render.
 */
export async function rollbackNode(t: Transport, n: ResolvedNode, o: RollbackOptions): Promise<NodeResult> {
  let state: NodeState;
  try {
    state = await readState(t, n.root);
  } catch (e) {
    return blank(n.name, errorMessage(e));
  }
  const target = await chooseTarget(t, n.root, state, o.to);
  if ('error' in target) return blank(n.name, target.error, state.current ?? null);
  return activateRelease(t, { op: 'rollback', root: n.root, nginx: nginxTargetOf(n), kong: n.kong, manifest: target.manifest, holder: makeHolder('edgectl rollback'), logger: o.logger });
}

async function chooseTarget(t: Transport, root: string, s: NodeState, to: string | undefined): Promise<{ manifest: Manifest } | { error: string }> {
  const l = layout(root);
  const manifests: { name: string; m: Manifest }[] = [];
  for (const r of s.releases) {
    const text = await t.readFile(manifestPath(l.release(r.name)));
    const p = text ? parseManifest(text) : undefined;
    if (p?.manifest) manifests.push({ name: r.name, m: p.manifest });
  }
  const list = manifests.map((x) => `${x.name}${x.m.fleet.commit ? ` (${x.m.fleet.commit.slice(0, 10)})` : ''}${x.name === s.current ? ' current' : ''}`).join(', ') || 'none';
  if (!to) {
    const prev = manifests.find((x) => x.name !== s.current);
    return prev ? { manifest: prev.m } : { error: `no earlier release on the node to roll back to (releases: ${list})` };
  }
  if (!/^[0-9a-f]{7,64}$/.test(to)) throw new EdgectlError('EDGECTL_USAGE', `--to "${to}" is not a release digest or git revision (7 to 64 hex digits)`);
  const hits = manifests.filter((x) => x.m.digest.startsWith(to) || (x.m.fleet.commit ?? '').startsWith(to));
  if (hits.length === 0) return { error: `no release on the node matches ${to} (releases: ${list})` };
  if (new Set(hits.map((h) => h.name)).size > 1) return { error: `${to} matches several releases on the node (${hits.map((h) => h.name).join(', ')}); give more digits` };
  return { manifest: hits[0].m };
}

/** Rolls back each node (names already selected), `concurrency` at a time; an unreachable node is a result. */
export async function rollbackNodes(connector: Connector, model: FleetModel, nodes: string[], o: RollbackOptions & { concurrency: number; onResult?: (r: NodeResult) => void }): Promise<NodeResult[]> {
  const resolved = resolvedNodes(model);
  return runNodes(connector, nodes.map((name) => findNode(resolved, name)), {
    concurrency: o.concurrency,
    node: (n) => n.name,
    run: (t, n) => rollbackNode(t, n, o),
    unreachable: (n, e): NodeResult => ({ ...blank(n.name, errorMessage(e)), outcome: 'unreachable', step: 'connect' }),
    onResult: (_n, r) => o.onResult?.(r),
  });
}

function blank(node: string, cause: string, from: string | null = null): NodeResult {
  return { node, outcome: 'failed', step: 'read', cause, from, to: null, transfer: noTransfer(), reloads: 0, notes: [], durationMs: 0 };
}
