import { selectedNodes } from './selected.js';
import type { FleetDeps, TargetOptions } from '../plan/index.js';
import type { NodeResult } from '../release/activate.js';
import { rollbackNodes } from '../release/rollback.js';

export interface RollbackFleetOptions extends TargetOptions {
  /** Release name, digest prefix or fleet commit prefix; default: the release before current. */
  to?: string;
  /** Asked with the selected nodes before any is touched: throws to stop with nothing changed. */
  confirm?: (nodes: string[]) => Promise<void>;
  onResult?: (r: NodeResult) => void;
}

/**
 * Rolls back the selected nodes (never a whole fleet by default). Reads the fleet for its node
 * list only: no render, no git server. The connector lives exactly as long as this call.
 */
export async function rollbackFleet(deps: FleetDeps, o: RollbackFleetOptions): Promise<NodeResult[]> {
  const { model, names: nodes } = await selectedNodes(o, { needs: 'rollback needs --node or --selector (it never rolls back a whole fleet by default)', none: 'no node matches --node/--selector' });
  await o.confirm?.(nodes);
  const connector = deps.connect(model);
  try {
    return await rollbackNodes(connector, model, nodes, { to: o.to, logger: deps.logger, concurrency: o.concurrency, onResult: o.onResult });
  } finally {
    await connector.close();
  }
}
