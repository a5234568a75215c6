import { errorMessage } from '../errors.js';
import { resolvedNodes, type FleetModel, type ResolvedNode } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { findNode } from '../nodes/select.js';
import { runNodes } from '../nodes/run-nodes.js';
import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';
import { activateRelease, type NodeResult } from './activate.js';
import { chooseRollback, readReleaseForActivation } from './history.js';
import { nginxTargetOf } from './nginx.js';
import { makeHolder } from './lock.js';
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
  const target = chooseRollback(state, o.to);
  if ('error' in target) return blank(n.name, target.error, state.current ?? null);
  let release;
  try {
    release = await readReleaseForActivation(t, n.root, target.release);
  } catch (e) {
    return blank(n.name, errorMessage(e), state.current ?? null);
  }
  const r = await activateRelease(t, { op: 'rollback', root: n.root, nginx: nginxTargetOf(n), kong: n.kong, manifest: release.manifest, releaseFiles: release.files, state, holder: makeHolder('edgectl rollback'), logger: o.logger });
  if (target.note) r.notes.unshift(target.note);
  return r;
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
