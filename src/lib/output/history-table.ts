import type { NodeHistory } from '../apply/history-fleet.js';
import type { TableData } from './plan-table.js';

/** One row per release: node, release, commit, activated, result, and which of current/good it is. */
export function historyTable(nodes: NodeHistory[]): TableData {
  const rows: string[][] = [];
  for (const n of nodes) {
    if (!n.reachable) rows.push([n.node, '-', '-', '-', `unreachable: ${n.error ?? ''}`, '']);
    else if (n.releases.length === 0) rows.push([n.node, '-', '-', '-', 'no releases', '']);
    for (const r of n.releases) {
      const marks = [r.current ? 'current' : '', r.good ? 'good' : ''].filter(Boolean).join(',');
      rows.push([n.node, r.release, r.commit?.slice(0, 12) ?? '-', r.activatedAt.replace(/\.\d+Z$/, 'Z'), r.result + (r.failedAt ? ` (${r.failedAt})` : ''), marks]);
    }
  }
  return { head: ['NODE', 'RELEASE', 'COMMIT', 'ACTIVATED', 'RESULT', ''], rows };
}
