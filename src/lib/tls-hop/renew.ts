import type { SecretOpener } from '../secrets/opener.js';
import { issueHopCert, type HopIssue } from './fleet-ca.js';
import { hopHost, listensForForwards } from './render.js';

/** The hosts a node's certificate must name, from the fleet (what render checks it against). */
export async function fleetHopNames(fleet: string): Promise<Map<string, string[]>> {
  const { loadFleet } = await import('../fleet/load.js');
  const { renderContext } = await import('../render/context.js');
  const ctx = renderContext((await loadFleet(fleet)).model);
  return new Map(ctx.nodes.filter(listensForForwards).map((n) => [n.name, [hopHost(ctx, n)]]));
}

/**
 * `edgectl ca renew`: for every relay and core node of the fleet, a new hop certificate when its
 * own is missing, names another host than the fleet says, or has 30 days or fewer left; the
 * others are kept. Stops at the first failure (what was issued before it stays written).
 */
export async function renewHopCerts(o: { fleet: string; secrets: SecretOpener; now?: Date }): Promise<HopIssue[]> {
  const out: HopIssue[] = [];
  for (const [node, names] of [...(await fleetHopNames(o.fleet))].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push(await issueHopCert({ fleet: o.fleet, node, names, secrets: o.secrets, ifDue: true, now: o.now }));
  }
  return out;
}
