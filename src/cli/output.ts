import pc from 'picocolors';
import Table from 'cli-table3';
import { applyFailures, applyTable, type OutcomeLabels } from '../lib/output/apply-table.js';
import type { TableData } from '../lib/output/plan-table.js';
import type { NodeResult } from '../lib/release/activate.js';
import { isSuccess } from '../lib/release/outcome.js';

export type Colors = ReturnType<typeof pc.createColors>;

/** Colour only on a TTY, never with NO_COLOR set (https://no-color.org), forced by FORCE_COLOR. */
export function useColor(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

export function colorsFor(stream: NodeJS.WriteStream): Colors {
  return pc.createColors(useColor(stream));
}

/** A table for many rows; plain borders when not on a TTY so logs stay greppable. */
export function table(head: string[], rows: (string | number)[][], stream: NodeJS.WriteStream = process.stdout): string {
  const color = useColor(stream);
  const t = new Table({
    head,
    style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [] },
    ...(color ? {} : { chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' } }),
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** A table, then the whole of any cell it cut short: a reason is never lost to the column width. */
export function tableOf(t: TableData, stream: NodeJS.WriteStream = process.stdout): string {
  return table(t.head, t.rows, stream) + (t.notes?.length ? `\n${t.notes.join('\n')}` : '');
}

/** Node results of apply, rollback or drift --fix for stdout: a table, the failing nodes' own output, then `summary`. */
export function resultsText(nodes: NodeResult[], summary?: string, labels?: OutcomeLabels): string {
  const c = colorsFor(process.stdout);
  const parts = nodes.length > 0 ? [tableOf(applyTable(nodes, c, labels)), applyFailures(nodes, c, labels)] : [];
  return [...parts, summary ?? ''].filter(Boolean).join('\n');
}

/** The exit status rule of every command that changes nodes: 0 only when each one succeeded. */
export const allSucceeded = (nodes: NodeResult[]) => nodes.every((r) => isSuccess(r.outcome));
