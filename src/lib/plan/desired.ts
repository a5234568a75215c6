import type { LoadedFleet } from '../fleet/load.js';
import type { Logger } from '../logger.js';
import type { HealthTarget } from '../release/health.js';
import { nginxTargetOf } from '../release/nginx.js';
import { isDiffable, type DesiredNode } from './compute.js';
import type { SecretOpener } from '../secrets/opener.js';
import { isSecretFile } from '../secrets/paths.js';

export interface DesiredSet {
  nodes: DesiredNode[];
  bundles: Map<string, { files: { path: string; data: Buffer; mode: number; sealed?: { file: string; data: Buffer } }[] }>;
}

/** Renders the selected nodes and describes what each should hold. */
export async function desiredState(loaded: LoadedFleet, opts: { nodes?: string[]; selector?: Record<string, string>; edgectlVersion: string; logger: Logger; route: (node: string) => string[]; secrets?: SecretOpener }): Promise<DesiredSet> {
  const { renderFleet } = await import('../render/index.js');
  const { renderContext, appsOnNode, appId } = await import('../render/context.js');
  const ctx = renderContext(loaded.model);
  const bundles = await renderFleet(loaded, { nodes: opts.nodes, selector: opts.selector, edgectlVersion: opts.edgectlVersion, logger: opts.logger, context: ctx, secrets: opts.secrets });
  const nodes: DesiredNode[] = [];
  for (const b of bundles) {
    const r = ctx.nodeByName.get(b.node)!;
    const health: HealthTarget[] = appsOnNode(ctx, r).flatMap((a) => {
      const id = appId(a);
      const host = a.spec.domains[0].replace(/^\*\./, 'healthz.');
      const path = a.spec.healthCheck?.path ?? '/healthz';
      const own: HealthTarget = { app: id, host, path, expectStatus: a.spec.healthCheck?.expectStatus ?? 200, ...(path === '/healthz' && !a.spec.healthCheck?.expectStatus ? { expectBody: `${a.spec.tenant}/${a.name}` } : {}) };
      // Without a healthCheck, the app's own page too (static and FastCGI: answered on the node;
      // a proxy's upstream is the tenant's backend, which the gate does not call): see health.ts.
      const page = a.spec.healthCheck ? undefined : a.spec.type === 'static' || a.spec.type === 'fastcgi' ? a.spec.type : undefined;
      return page ? [own, { app: id, host, path: '/', expectStatus: 200, page }] : [own];
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
      // A secret's bytes are never kept for a diff (it shows as redacted, by its digest).
      files: new Map(b.files.filter((f) => isDiffable(f.path) && !isSecretFile(f)).map((f) => [f.path, f.data])),
    });
  }
  return { nodes, bundles: new Map(bundles.map((b) => [b.node, b])) };
}
