import type { Plan, PlanNode } from '../plan/types.js';
import type { Paint } from './validate-report.js';

export interface TableData {
  head: string[];
  rows: string[][];
}

const short = (r: string | null | undefined) => (r ? r.slice(0, 12) : '-');

export function routeText(route: string[]): string {
  if (route.length === 1 && route[0] === 'local') return 'local';
  if (route.length <= 1) return 'direct';
  return `via ${route.slice(0, -1).join(' > ')}`;
}

function revision(n: PlanNode, which: 'current' | 'desired'): string {
  if (which === 'current') {
    if (!n.current.release) return 'none';
    return n.current.commit ? `${short(n.current.release)} (${n.current.commit.slice(0, 7)})` : short(n.current.release);
  }
  return n.desired.commit ? `${short(n.desired.release)} (${n.desired.commit.slice(0, 7)})` : short(n.desired.release);
}

/** The plan as a table: one row per node. Pure. */
export function planTable(plan: Plan, c: Paint): TableData {
  const rows = plan.nodes.map((n) => {
    const f = n.files;
    const action = n.action === 'none' ? c.dim('no change') : n.action === 'unreachable' ? c.red('unreachable') : n.action === 'finish' ? c.yellow('finish') : c.yellow(n.action);
    return [
      n.node,
      n.role,
      routeText(n.route),
      n.reachable ? c.green('yes') : c.red('no'),
      n.reachable ? `${revision(n, 'current')} → ${revision(n, 'desired')}` : `? → ${revision(n, 'desired')}`,
      n.reachable ? `+${f.added.length} ~${f.changed.length} -${f.removed.length}` : '',
      action + (n.reason && n.action !== 'none' ? c.dim(` (${n.reason.slice(0, 100)})`) : ''),
    ];
  });
  return { head: ['node', 'role', 'path', 'reachable', 'current → desired', 'files', 'action'], rows };
}

export function planSummaryLine(plan: Plan): string {
  const s = plan.summary;
  return `${s.nodes} node(s): ${s.changes} to change, ${s.unchanged} unchanged, ${s.unreachable} unreachable`;
}
