import type { LoadedFleet } from '../fleet/load.js';
import type { Logger } from '../logger.js';
import type { HealthTarget } from '../release/health.js';
import { nginxTargetOf } from '../release/nginx.js';
import { isDiffable, type DesiredNode } from './compute.js';

export interface DesiredSet {
  nodes: DesiredNode[];
  bundles: Map<string, { files: { path: string; data: Buffer; mode: number }[] }>;
}

/** Renders the selected nodes and describes what each should hold. */
export async function desiredState(loaded: LoadedFleet, opts: { nodes?: string[]; selector?: Record<string, string>; edgectlVersion: string; logger: Logger; route: (node: string) => string[] }): Promise<DesiredSet> {
  const { renderFleet } = await import('../render/index.js');
  const { renderContext, appsOnNode, appId } = await import('../render/context.js');
  const ctx = renderContext(loaded.model);
  const bundles = await renderFleet(loaded, { nodes: opts.nodes, selector: opts.selector, edgectlVersion: opts.edgectlVersion, logger: opts.logger, context: ctx });
  const nodes: DesiredNode[] = [];
  for (const b of bundles) {
    const r = ctx.nodeByName.get(b.node)!;
    const health: HealthTarget[] = appsOnNode(ctx, r).map((a) => {
      const id = appId(a);
      const path = a.spec.healthCheck?.path ?? '/healthz';
      return { app: id, host: a.spec.domains[0].replace(/^\*\./, 'healthz.'), path, expectStatus: a.spec.healthCheck?.expectStatus ?? 200, ...(path === '/healthz' && !a.spec.healthCheck?.expectStatus ? { expectBody: `${a.spec.tenant}/${a.name}` } : {}) };
    });
    nodes.push({
      node: b.node,
      role: r.role,
      route: opts.route(b.node),
      root: r.root,
      nginx: nginxTargetOf(r),
      kong: r.kong,
      health,
      manifest: b.manifest,
      files: new Map(b.files.filter((f) => isDiffable(f.path)).map((f) => [f.path, f.data])),
    });
  }
  return { nodes, bundles: new Map(bundles.map((b) => [b.node, b])) };
}
