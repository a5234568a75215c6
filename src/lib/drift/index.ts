import { runNodes } from '../nodes/run-nodes.js';
import { planFleet, type FleetDeps, type Planned, type TargetOptions } from '../plan/index.js';
import type { PlanNode } from '../plan/types.js';
import type { Transport } from '../transport/types.js';
import { layout, manifestPath } from '../release/layout.js';
import { failureText } from '../release/remote.js';
import { isClean, verifyRelease, type VerifyResult } from '../release/stage.js';

export const DRIFT_FORMAT = 'edgectl-drift/v1';

/**
 * clean: the node runs what git says, byte for byte. outdated: it runs an older (or other)
 * release intact. modified: someone changed the files of its current release on the node.
 * missing: no release yet. stopped: right release, but nginx is down or a switch is unfinished.
 */
export type DriftStatus = 'clean' | 'outdated' | 'modified' | 'missing' | 'stopped' | 'unreachable';

export interface DriftNode {
  node: string;
  status: DriftStatus;
  /** Also behind git (a modified node can be outdated too). */
  outdated: boolean;
  current: string | null;
  desired: string;
  modified?: VerifyResult;
  detail?: string;
}

export interface DriftReport {
  format: typeof DRIFT_FORMAT;
  checkedAt: string;
  nodes: DriftNode[];
  summary: Record<DriftStatus, number>;
}

export async function driftFleet(deps: FleetDeps, opts: TargetOptions, o: { keepConnections?: boolean } = {}): Promise<{ report: DriftReport; planned: Planned }> {
  const planned = await planFleet(deps, { ...opts, diff: false, keepConnections: o.keepConnections });
  const nodes: DriftNode[] = planned.plan.nodes.map((n) => base(n));
  const byName = new Map(nodes.map((d) => [d.node, d]));
  try {
    // A node at the desired release was verified in plan's state read: only the others need a second look.
    const atDesired = (n: PlanNode) => n.current.release === n.desired.release && !n.current.manifestError;
    await runNodes(planned.connector, planned.plan.nodes.filter((n) => n.reachable && n.current.release && !atDesired(n)), {
      concurrency: opts.concurrency,
      node: (n) => n.node,
      unreachable: (n, e) => void Object.assign(byName.get(n.node)!, { status: 'unreachable', detail: failureText(e) }),
      run: async (t, n) => {
        const d = byName.get(n.node)!;
        const dir = layout(n.root).release(n.current.release!);
        const m = await readManifest(t, manifestPath(dir));
        if (!m) return void Object.assign(d, { status: 'modified', detail: 'manifest.json of current is missing or damaged' });
        const v = await verifyRelease(t, dir, m);
        if (!isClean(v)) Object.assign(d, { status: 'modified', modified: v });
      },
    });
  } catch (e) {
    await planned.connector.close();
    throw e;
  }
  const summary = { clean: 0, outdated: 0, modified: 0, missing: 0, stopped: 0, unreachable: 0 };
  for (const d of nodes) summary[d.status]++;
  return { report: { format: DRIFT_FORMAT, checkedAt: deps.now().toISOString(), nodes, summary }, planned };
}

async function readManifest(t: Transport, path: string) {
  const text = await t.readFile(path);
  const { parseManifest } = await import('../release/manifest-parse.js');
  return text ? parseManifest(text).manifest : undefined;
}

function base(n: PlanNode): DriftNode {
  const edited = n.current.modified;
  const outdated = !edited && (n.action === 'update' || n.action === 'create');
  const status: DriftStatus = !n.reachable ? 'unreachable' : !n.current.release ? 'missing' : edited ? 'modified' : outdated ? 'outdated' : n.action === 'finish' ? 'stopped' : 'clean';
  return { node: n.node, status, outdated, current: n.current.release, desired: n.desired.release, ...(edited ? { modified: edited } : n.reason || n.error ? { detail: n.error ?? n.reason } : {}) };
}

/** The plan restricted to drifted nodes, modified ones included even when their digest matches. */
export function fixPlan(planned: Planned, report: DriftReport): Planned {
  const drifted = new Map(report.nodes.filter((d) => d.status !== 'clean' && d.status !== 'unreachable').map((d) => [d.node, d]));
  const nodes = planned.plan.nodes.filter((n) => drifted.has(n.node)).map((n) => (n.action === 'none' ? { ...n, action: 'update' as const, reason: 'modified on node' } : n));
  return { ...planned, plan: { ...planned.plan, nodes, summary: { ...planned.plan.summary, nodes: nodes.length, changes: nodes.length, unchanged: 0 } } };
}

export const hasDrift = (r: DriftReport) => r.nodes.some((d) => d.status !== 'clean' && d.status !== 'unreachable');
