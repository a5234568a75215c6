import { EdgectlError } from '../errors.js';
import type { FleetModel } from '../fleet/model.js';
import { localModel } from '../nodes/local-mode.js';
import { selectNodes } from '../nodes/select.js';
import type { TargetOptions } from '../plan/index.js';

/**
 * For the commands that never act on a whole fleet by default (rollback, history): the fleet
 * read for its node list only (no render), local mode applied, the nodes named or selected.
 * `needs`: the usage error when neither was given; `none`: the one when nothing matched.
 */
export async function selectedNodes(o: TargetOptions, msg: { needs: string; none: string }): Promise<{ model: FleetModel; names: string[] }> {
  if (!o.nodes?.length && !o.selector) throw new EdgectlError('EDGECTL_USAGE', msg.needs);
  const { loadFleet } = await import('../fleet/load.js');
  const loaded = await loadFleet(o.fleet);
  const model = o.local ? localModel(loaded.model, o.local) : loaded.model;
  const names = selectNodes(model.nodes, { nodes: o.nodes, selector: o.selector }).map((n) => n.name);
  if (names.length === 0) throw new EdgectlError('EDGECTL_USAGE', msg.none);
  return { model, names };
}
