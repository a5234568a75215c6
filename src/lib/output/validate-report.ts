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

function where(r: ValidationResult): string {
  const c = r.commit ? r.commit.slice(0, 12) : undefined;
  if (r.from === 'rev') return `revision ${r.rev} (commit ${c})`;
  if (r.from === 'directory') return 'a directory outside git';
  if (!c) return 'working tree (no commits yet)';
  return `working tree at commit ${c}${r.dirty ? ', with uncommitted changes (dirty)' : ', clean'}`;
}

/** Strips anything that could move a terminal's cursor when quoting a hostile source line. */
function safeLine(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?').replace(/\t/g, ' ');
}

export function problemText(p: Problem, text: string | undefined, c: Paint = plain): string {
  const sev = p.severity === 'error' ? c.red('error') : c.yellow('warning');
  const lines = [`${c.bold(`${p.file}:${p.line}:${p.column}`)} ${sev} ${p.path ? c.cyan(p.path) + ': ' : ''}${p.message} ${c.dim(`[${p.rule}]`)}`];
  const src = text?.split('\n')[p.line - 1];
  if (src !== undefined) {
    const num = String(p.line);
    const shown = safeLine(src.length > 200 ? src.slice(0, 200) + '…' : src);
    lines.push(c.dim(`  ${num} | `) + shown);
    lines.push(c.dim(`  ${' '.repeat(num.length)} | `) + ' '.repeat(Math.max(0, Math.min(p.column - 1, 200))) + (p.severity === 'error' ? c.red('^') : c.yellow('^')));
  }
  if (p.hint) lines.push(`  ${c.dim('hint:')} ${p.hint}`);
  return lines.join('\n');
}

export function validateText(r: ValidationResult, c: Paint = plain): string {
  const out: string[] = [];
  for (const p of r.problems) out.push(problemText(p, r.texts.get(p.file), c), '');
  const { counts } = r;
  const what = `${counts.files} files, ${counts.nodes} nodes, ${counts.apps} apps, ${counts.tenants} tenants`;
  if (r.errors === 0) {
    out.push(`${c.green('✓ valid')}: ${what}; ${where(r)}${r.warnings ? `; ${r.warnings} warning(s)` : ''}`);
  } else {
    out.push(`${c.red('✗ invalid')}: ${r.errors} error(s), ${r.warnings} warning(s) in ${what}; ${where(r)}`);
  }
  return out.join('\n');
}

export function validateJson(r: ValidationResult, strict: boolean): object {
  return {
    valid: r.errors === 0 && (!strict || r.warnings === 0),
    errors: r.errors,
    warnings: r.warnings,
    strict,
    source: { from: r.from, rev: r.rev, commit: r.commit ?? null, dirty: r.dirty },
    counts: r.counts,
    problems: r.problems.map((p) => ({ ...p, severity: strict && p.severity === 'warning' ? 'error' : p.severity })),
  };
}

/** GitHub Actions workflow commands; values escaped as the runner's toolkit does. */
export function validateGithub(r: ValidationResult, strict: boolean): string {
  const esc = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s: string) => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const lines = r.problems.map((p) => {
    const level = p.severity === 'error' || strict ? 'error' : 'warning';
    const msg = `${p.path ? p.path + ': ' : ''}${p.message}${p.hint ? ` (${p.hint})` : ''}`;
    return `::${level} file=${prop(p.file)},line=${p.line},col=${p.column},title=${prop(`edgectl ${p.rule}`)}::${esc(msg)}`;
  });
  lines.push(r.errors === 0 && (!strict || r.warnings === 0) ? `edgectl: fleet is valid (${r.counts.nodes} nodes, ${r.counts.apps} apps)` : `edgectl: ${r.errors} error(s), ${r.warnings} warning(s)`);
  return lines.join('\n');
}
