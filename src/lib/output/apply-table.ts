import { ERROR_HINTS } from '../errors.js';
import type { ApplyEvent, ApplyReport } from '../apply/types.js';
import type { NodeResult } from '../release/activate.js';
import { isSuccess } from '../release/outcome.js';
import type { Paint } from './validate-report.js';
import type { TableData } from './plan-table.js';

const bytes = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

/** Words for outcomes where apply's would mislead: a rollback that worked did not "apply". */
export type OutcomeLabels = Partial<Record<NodeResult['outcome'], string>>;
export const ROLLBACK_LABELS: OutcomeLabels = { applied: 'rolled back', 'rolled-back': 'failed, reverted' };

export function outcomeText(o: NodeResult['outcome'], c: Paint, labels: OutcomeLabels = {}): string {
  const t = labels[o] ?? o;
  if (o === 'applied') return c.green(t);
  if (o === 'unchanged') return c.dim(t);
  if (o === 'skipped') return c.yellow(t);
  return c.red(t);
}

/** Characters of a cause in the table; a longer one is shown whole after it (applyFailures). */
const CAUSE_CELL = 160;

/** The summary table after apply/rollback/drift --fix: one row per node. Pure. */
export function applyTable(nodes: NodeResult[], c: Paint, labels: OutcomeLabels = {}): TableData {
  return {
    head: ['node', 'result', 'step', 'from → to', 'sent', 'reloads', 'time', 'cause'],
    rows: nodes.map((r) => [
      r.node,
      outcomeText(r.outcome, c, labels),
      isSuccess(r.outcome) ? '' : r.step,
      `${r.from?.slice(0, 12) ?? 'none'} → ${r.to?.slice(0, 12) ?? '-'}`,
      r.transfer.files ? `${r.transfer.files} files, ${bytes(r.transfer.bytes)}` : '-',
      String(r.reloads),
      `${(r.durationMs / 1000).toFixed(1)}s`,
      (r.cause ?? '').length > CAUSE_CELL ? `${r.cause!.slice(0, CAUSE_CELL - 1)}…` : (r.cause ?? ''),
    ]),
  };
}

/** The nodes' own error output, after the table: what an operator needs to fix the failure. */
export function applyFailures(nodes: NodeResult[], c: Paint, labels: OutcomeLabels = {}): string {
  const out: string[] = [];
  for (const r of nodes) {
    if (!r.output && !r.code && !(r.outcome !== 'applied' && r.notes.length) && (r.cause ?? '').length <= CAUSE_CELL) continue;
    if (isSuccess(r.outcome)) continue;
    out.push(c.bold(`${r.node}: ${labels[r.outcome] ?? r.outcome} at ${r.step}: ${r.cause ?? ''}${r.code ? ` [${r.code}]` : ''}`));
    if (r.code) out.push(c.dim(`  hint: ${ERROR_HINTS[r.code]}`));
    if (r.output) out.push(r.output.split('\n').map((l) => `  | ${l}`).join('\n'));
    for (const n of r.notes) out.push(c.dim(`  ${n}`));
  }
  return out.join('\n');
}

export function applySummaryLine(r: ApplyReport): string {
  const s = r.summary;
  const parts = [`${s.applied} applied`, `${s.unchanged} unchanged`, `${s.failed + s['rolled-back']} failed (${s['rolled-back']} rolled back)`, `${s.stale} stale`, `${s.locked} locked`, `${s.unreachable} unreachable`, `${s.skipped} not started`];
  return `${parts.join(', ')}; sent ${s.uploadedFiles} files (${bytes(s.uploadedBytes)}), ${s.reloads} reloads${r.stopped ? `; ${r.stopped}` : ''}`;
}

/** One line per node event, for logs and non-TTY stderr. */
export function applyEventLine(e: ApplyEvent): string {
  if (e.kind === 'start') return `${e.time} ${e.node} start ${e.message ?? ''}`.trimEnd();
  if (e.kind === 'step') return `${e.time} ${e.node} ${e.step}`;
  return `${e.time} ${e.node} ${e.outcome}${!isSuccess(e.outcome!) && e.step ? ` at ${e.step}` : ''}${e.message ? `: ${e.message}` : ''}`;
}
