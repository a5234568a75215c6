import { resolvedNodes, type AppResource, type FleetModel, type ResolvedNode, type TenantResource } from '../fleet/model.js';
import { placeFleet, type Placement } from '../placement/index.js';

/** Fleet-wide facts every node's render needs, computed once. */
export interface RenderContext {
  model: FleetModel;
  nodes: ResolvedNode[];
  nodeByName: Map<string, ResolvedNode>;
  apps: Map<string, AppResource>;
  appsByTenant: Map<string, AppResource[]>;
  tenants: Map<string, TenantResource>;
  placement: Placement;
}

export function renderContext(model: FleetModel): RenderContext {
  const byName = resolvedNodes(model);
  const nodes = [...byName.values()];
  const appsByTenant = new Map<string, AppResource[]>();
  for (const a of model.apps) {
    const list = appsByTenant.get(a.spec.tenant);
    if (list) list.push(a);
    else appsByTenant.set(a.spec.tenant, [a]);
  }
  return {
    model,
    nodes,
    nodeByName: new Map(byName),
    apps: new Map(model.apps.map((a) => [a.name, a])),
    appsByTenant,
    tenants: new Map(model.tenants.map((t) => [t.name, t])),
    placement: placeFleet(model),
  };
}

/**
 * `<tenant>.<app>`: the app's name in file names, nginx upstream and cache zone names, payload
 * directories, sockets and Kong entities. Tenant and app names are DNS labels, which never
 * contain ".", so no two (tenant, app) pairs give one id: with "--", tenant acme--x's app www
 * and tenant acme's app x--www were both acme--x--www, and broke rendering for the whole fleet.
 */
export function appId(app: AppResource): string {
  return `${app.spec.tenant}.${app.name}`;
}

/** The apps placed on a node, sorted by name (only edge nodes run apps). */
export function appsOnNode(ctx: RenderContext, node: ResolvedNode): AppResource[] {
  return (ctx.placement.byNode.get(node.name) ?? []).map((n) => ctx.apps.get(n)!);
}
