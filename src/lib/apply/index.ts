import { manifestBytes } from '../bundle/manifest.js';
import { resolvedNodes, type FleetModel } from '../fleet/model.js';
import { requireNodes } from '../nodes/select.js';
import { localModel, type LocalMode } from '../nodes/local-mode.js';
import type { FleetDeps, Planned } from '../plan/index.js';
import type { Plan } from '../plan/types.js';
import type { ReleaseBundle } from '../release/stage.js';
import type { Connector } from '../transport/connect.js';

export { applyPlan, type ApplyDeps } from './run.js';
export type { ApplyReport, ApplyEvent } from './types.js';
export { rolloutOf, type RolloutOptions, type RolloutOverrides } from './rollout.js';

/** The bundles of the nodes a fresh plan changes, from the rendered bytes. */
export function bundlesOf(planned: Pick<Planned, 'plan' | 'blobs'>): Map<string, ReleaseBundle> {
  const out = new Map<string, ReleaseBundle>();
  for (const n of planned.plan.nodes) {
    if (n.action === 'none' || n.action === 'unreachable') continue;
    const files = Object.entries(n.manifest.files).map(([path, f]) => ({ path, data: planned.blobs.get(f.sha256)!, mode: f.mode }));
    out.set(n.node, { files, manifest: n.manifest, manifestData: manifestBytes(n.manifest) });
  }
  return out;
}

/**
 * A saved plan: its bundles come from the file; the fleet is read only for node addresses
 * and relays (no render). A plan made in local mode stays in local mode.
 */
export async function openSavedPlan(deps: FleetDeps, text: string, file: string, fleetDir: string, local?: Omit<LocalMode, 'root'>): Promise<{ plan: Plan; bundles: Map<string, ReleaseBundle>; connector: Connector; model: FleetModel }> {
  const { loadPlan } = await import('../plan/file.js');
  const { loadFleet } = await import('../fleet/load.js');
  const { plan, bundles } = await loadPlan(text, file, { secrets: deps.secrets, demoFleet: fleetDir });
  const loaded = await loadFleet(fleetDir);
  const model = plan.local ? localModel(loaded.model, { root: plan.local.root, portBase: local?.portBase ?? 0, address: local?.address ?? '127.0.0.1' }) : loaded.model;
  requireNodes(plan.nodes.map((n) => n.node), resolvedNodes(model), { where: file, fleet: fleetDir });
  return { plan, bundles, connector: deps.connect(model, plan.local?.root), model };
}
