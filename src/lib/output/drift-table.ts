import type { DriftReport } from '../drift/index.js';
import type { Paint } from './validate-report.js';
import { cell, type TableData } from './plan-table.js';

/** drift as a table: stable, non-interactive output for cron. Pure. */
export function driftTable(r: DriftReport, c: Paint): TableData {
  const notes: string[] = [];
  return {
    notes,
    head: ['node', 'status', 'current', 'desired', 'detail'],
    rows: r.nodes.map((d) => {
      const status = d.status === 'clean' ? c.green('clean') : d.status === 'unreachable' ? c.red(d.status) : c.yellow(d.status === 'modified' ? 'modified on node' : d.status);
      const m = d.modified;
      const detail = m ? [m.modified.length ? `modified: ${m.modified.join(', ')}` : '', m.missing.length ? `missing: ${m.missing.join(', ')}` : '', m.extra.length ? `extra: ${m.extra.join(', ')}` : '', m.modeChanged.length ? `mode: ${m.modeChanged.join(', ')}` : '', d.outdated ? 'also outdated' : ''].filter(Boolean).join('; ') : (d.detail ?? '');
      return [d.node, status, d.current?.slice(0, 12) ?? 'none', d.desired.slice(0, 12), cell(detail, 200, d.node, notes)];
    }),
  };
}

/** The count of each status, after the table. */
export function driftSummaryLine(r: DriftReport): string {
  const s = r.summary;
  return `${r.nodes.length} node(s): ${s.clean} clean, ${s.outdated} outdated, ${s.modified} modified on node, ${s.missing} without a release, ${s.stopped} stopped, ${s.unreachable} unreachable`;
}
