import type { Bundle } from '../render/bundle.js';
import type { FleetModel } from '../fleet/model.js';
import type { TableData } from './plan-table.js';
import type { Paint } from './validate-report.js';

export interface RenderedNode {
  node: string;
  role?: string;
  /** Apps on the node: one nginx/conf.d file each. */
  apps: number;
  /** Files of the bundle, its manifest included. */
  files: number;
  digest: string;
  nginxConfigId: string;
}

/** Past this many nodes the table is more noise than help: the summary line says it all. */
const TABLE_MAX = 100;

/** One row per rendered bundle. Pure. */
export function renderedNodes(bundles: Bundle[], model: FleetModel): RenderedNode[] {
  const roles = new Map(model.nodes.map((n) => [n.name, n.spec.role]));
  return bundles.map((b) => ({
    node: b.node,
    role: roles.get(b.node),
    apps: Object.keys(b.manifest.files).filter((f) => f.startsWith('nginx/conf.d/')).length,
    files: Object.keys(b.manifest.files).length + 1,
    digest: b.manifest.digest,
    nginxConfigId: b.manifest.nginxConfigId,
  }));
}

export function renderTable(nodes: RenderedNode[]): TableData | undefined {
  if (nodes.length > TABLE_MAX) return undefined;
  return { head: ['node', 'role', 'apps', 'files', 'digest'], rows: nodes.map((s) => [s.node, s.role ?? '', String(s.apps), String(s.files), s.digest.slice(0, 20)]) };
}

export function renderedLine(nodes: RenderedNode[], out: string, ms: number, dirty: boolean, c: Paint): string {
  return `${c.green('rendered')} ${nodes.length} bundle(s) to ${out} in ${ms} ms${dirty ? c.yellow(' (fleet has uncommitted changes)') : ''}`;
}
