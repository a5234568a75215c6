import type { ValidationResult } from '../fleet/validate.js';
import type { Problem } from '../fleet/problems.js';

export interface Paint {
  red(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
}

const plain: Paint = { red: (s) => s, yellow: (s) => s, dim: (s) => s, bold: (s) => s, green: (s) => s, cyan: (s) => s };

export interface ReportOptions {
  /** Warnings count as errors. */
  strict?: boolean;
  /**
   * Prepended to file paths (the fleet directory as the user named it, relative to the working
   * directory), so that `fleet/nodes/a.yaml:3:5` opens in an editor and GitHub finds the file.
   */
  prefix?: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Which files were validated: a revision, or the working tree and whether it has uncommitted changes. */
export function sourceText(r: Pick<ValidationResult, 'commit' | 'from' | 'rev' | 'dirty'>): string {
  const c = r.commit ? r.commit.slice(0, 12) : undefined;
  if (r.from === 'rev') return `revision ${r.rev} (commit ${c})`;
  if (r.from === 'directory') return 'a directory outside git';
  if (!c) return 'working tree (no commits yet)';
  return `working tree at commit ${c}${r.dirty ? ', with uncommitted changes (dirty)' : ', clean'}`;
}

/** Strips anything that could move a terminal's cursor when quoting a hostile source line. */
function safeLine(s: string): string {
  return s.replace(/\r$/, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?').replace(/\t/g, ' ');
}

function joinPath(prefix: string | undefined, file: string): string {
  return prefix && prefix !== '.' ? `${prefix.replace(/\/+$/, '')}/${file}` : file;
}

function severityOf(p: Problem, strict: boolean): 'error' | 'warning' {
  return strict ? 'error' : p.severity;
}

/** One problem: location, message, the offending source line with a caret, and the hint. */
export function problemText(p: Problem, text: string | undefined, c: Paint = plain, opts: ReportOptions = {}, index: LineIndex = new Map()): string {
  const error = severityOf(p, opts.strict ?? false) === 'error';
  const sev = error ? c.red('error') : c.yellow('warning');
  const lines = [`${c.bold(`${safeLine(joinPath(opts.prefix, p.file))}:${p.line}:${p.column}`)} ${sev} ${p.path ? c.cyan(safeLine(p.path)) + ': ' : ''}${safeLine(p.message)} ${c.dim(`[${p.rule}]`)}`];
  const src = text === undefined ? undefined : sourceLine(text, p.line, index);
  if (src !== undefined) {
    const num = String(p.line);
    const shown = safeLine(src.length > 200 ? src.slice(0, 200) + '…' : src);
    lines.push(c.dim(`  ${num} | `) + shown);
    lines.push(c.dim(`  ${' '.repeat(num.length)} | `) + ' '.repeat(Math.max(0, Math.min(p.column - 1, 200))) + (error ? c.red('^') : c.yellow('^')));
  }
  if (p.hint) lines.push(`  ${c.dim('hint:')} ${safeLine(p.hint)}`);
  return lines.join('\n');
}

/** Line start offsets per file text, kept for one report: a file with many problems is scanned once. */
type LineIndex = Map<string, number[]>;

/** The n-th line (1-based) of a file. */
function sourceLine(text: string, n: number, index: LineIndex): string | undefined {
  let starts = index.get(text);
  if (!starts) {
    starts = [0];
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
    index.set(text, starts);
  }
  const start = starts[n - 1];
  if (start === undefined || (start >= text.length && n > 1)) return undefined;
  const end = starts[n] === undefined ? text.length : starts[n] - 1;
  return text.slice(start, end);
}

export function isValid(r: ValidationResult, strict: boolean): boolean {
  return r.errors === 0 && (!strict || r.warnings === 0);
}

export function validateText(r: ValidationResult, c: Paint = plain, opts: ReportOptions = {}): string {
  const out: string[] = [];
  const index: LineIndex = new Map();
  for (const p of r.problems) out.push(problemText(p, r.texts.get(p.file), c, opts, index), '');
  const { counts } = r;
  const what = `${plural(counts.files, 'file')}, ${plural(counts.nodes, 'node')}, ${plural(counts.apps, 'app')}, ${plural(counts.tenants, 'tenant')}`;
  if (isValid(r, opts.strict ?? false)) {
    out.push(`${c.green('✓ valid')}: ${what}; ${sourceText(r)}${r.warnings ? `; ${plural(r.warnings, 'warning')}` : ''}`);
  } else {
    const strictNote = r.errors === 0 ? ' (--strict: warnings count as errors)' : '';
    out.push(`${c.red('✗ invalid')}: ${plural(r.errors, 'error')}, ${plural(r.warnings, 'warning')}${strictNote} in ${what}; ${sourceText(r)}`);
  }
  return out.join('\n');
}

/** The --json document. Its shape is stable API (docs/fleet-format.md); `file` is relative to the fleet directory. */
export function validateJson(r: ValidationResult, strict: boolean): object {
  return {
    valid: isValid(r, strict),
    errors: r.errors,
    warnings: r.warnings,
    strict,
    source: { fleet: r.root, from: r.from, rev: r.rev ?? null, commit: r.commit ?? null, dirty: r.dirty },
    counts: r.counts,
    problems: r.problems.map((p) => ({ ...p, severity: severityOf(p, strict), hint: p.hint ?? null })),
  };
}

/** GitHub Actions workflow commands; values escaped as the runner's toolkit does. */
export function validateGithub(r: ValidationResult, opts: ReportOptions = {}): string {
  const strict = opts.strict ?? false;
  const esc = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s: string) => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const lines = r.problems.map((p) => {
    const msg = `${p.path ? p.path + ': ' : ''}${p.message}${p.hint ? ` (${p.hint})` : ''}`;
    return `::${severityOf(p, strict)} file=${prop(joinPath(opts.prefix, p.file))},line=${p.line},col=${p.column},title=${prop(`edgectl ${p.rule}`)}::${esc(msg)}`;
  });
  lines.push(isValid(r, strict)
    ? `edgectl: fleet is valid (${plural(r.counts.nodes, 'node')}, ${plural(r.counts.apps, 'app')}${r.warnings ? `, ${plural(r.warnings, 'warning')}` : ''}); ${sourceText(r)}`
    : `edgectl: fleet is invalid: ${plural(r.errors, 'error')}, ${plural(r.warnings, 'warning')}; ${sourceText(r)}`);
  return lines.join('\n');
}
