import type { Plan, PlanNode } from '../plan/types.js';
import type { Paint } from './validate-report.js';

export interface TableData {
  head: string[];
  rows: string[][];
  /** Full texts of cells the table cut short ("node: text"), printed after it. */
  notes?: string[];
}

/** A cell of at most `max` characters; a longer text ends in "…" and its whole is noted for after the table. */
export function cell(text: string, max: number, node: string, notes: string[]): string {
  if (text.length <= max) return text;
  notes.push(`${node}: ${text}`);
  return `${text.slice(0, max - 1)}…`;
}

const short = (r: string | null | undefined) => (r ? r.slice(0, 12) : '-');

export function routeText(route: string[]): string {
  if (route.length === 1 && route[0] === 'local') return 'local';
  if (route.length <= 1) return 'direct';
  return `via ${route.slice(0, -1).join(' > ')}`;
}

/** A commit as the tables show it: 7 digits, "-dirty" when the release was rendered from uncommitted changes. */
export function commitText(commit: string | null | undefined, dirty: boolean | undefined): string | undefined {
  if (!commit) return dirty ? 'uncommitted' : undefined;
  return `${commit.slice(0, 7)}${dirty ? '-dirty' : ''}`;
}

function revision(n: PlanNode, which: 'current' | 'desired'): string {
  if (which === 'current') {
    if (!n.current.release) return 'none';
    const c = commitText(n.current.commit, n.current.dirty);
    return c ? `${short(n.current.release)} (${c})` : short(n.current.release);
  }
  const c = commitText(n.desired.commit, n.manifest.fleet.dirty);
  return c ? `${short(n.desired.release)} (${c})` : short(n.desired.release);
}

/** The plan as a table: one row per node. Pure. */
export function planTable(plan: Plan, c: Paint): TableData {
  const notes: string[] = [];
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
      action + (n.reason && n.action !== 'none' ? c.dim(` (${cell(n.reason, 100, n.node, notes)})`) : ''),
    ];
  });
  const ports = plan.local?.ports;
  if (ports) {
    // Local mode: where each node's nginx and agent are on this machine (stable per node).
    rows.forEach((r, i) => {
      const p = ports[plan.nodes[i].node];
      r.push(p ? `${p.http} / ${p.https ?? '-'} / ${p.agent}, ${p.admin}` : '-');
    });
    return { head: ['node', 'role', 'path', 'reachable', 'current → desired', 'files', 'action', 'ports: http / https / agent, admin'], rows, notes };
  }
  return { head: ['node', 'role', 'path', 'reachable', 'current → desired', 'files', 'action'], rows, notes };
}

export function planSummaryLine(plan: Plan): string {
  const s = plan.summary;
  return `${s.nodes} node(s): ${s.changes} to change, ${s.unchanged} unchanged, ${s.unreachable} unreachable${dirtyNote(plan)}`;
}

/** After a summary line: the fleet is a working tree with uncommitted changes (apply refuses it without --allow-dirty). */
export function dirtyNote(plan: Pick<Plan, 'fleet'>): string {
  return plan.fleet.dirty ? `; fleet dirty (uncommitted changes on ${commitText(plan.fleet.commit, false) ?? 'no commit'})` : '';
}
