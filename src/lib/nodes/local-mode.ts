import type { FleetModel } from '../fleet/model.js';

export interface LocalMode {
  /** Every node is the directory <root>/<node> on this machine. */
  root: string;
  /** nginx of the n-th node (fleet order) listens on portBase + n. */
  portBase: number;
  address: string;
}

/**
 * The embedded default runs every node's nginx on this one machine, so each needs its own
 * listen port and its root under the local directory. Done on a copy of the model before
 * rendering, so the rendered configs, the plan and the health checks all agree.
 */
export function localModel(model: FleetModel, local: LocalMode): FleetModel {
  return {
    ...model,
    nodes: model.nodes.map((n, i) => ({ ...n, spec: { ...n.spec, root: `${local.root.replace(/\/+$/, '')}/${n.name}`, http: { address: local.address, port: local.portBase + i } } })),
  };
}
