import type { Document } from 'yaml';
import type { At } from './yaml-checks.js';
import type { LineIndex } from './yaml-scan.js';

const TAB_HINT = 'Indent with spaces: YAML does not allow tabs in indentation.';
const INDENT_HINT = 'Keys of one mapping start at the same column; indent a key further only under a key that has no value on its own line.';

/**
 * One syntax error per broken document, at the line to fix. The `yaml` package reports what one
 * mistake does to its parser state: a tab gives four errors, one over-indented key two errors in
 * parser jargon at the line above it. So: a tab in indentation is reported alone, where it is; an
 * indentation error that js-yaml (the fast path) placed in this document is reported at js-yaml's
 * line, which is the line of the key; anything else is the document's first error.
 */
export function documentSyntaxError(doc: Document, text: string, lines: LineIndex, fastError: unknown, at: At): void {
  const errors = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0]);
  const tab = errors.find((e) => e.code === 'TAB_AS_INDENT');
  if (tab) {
    const lp = lines.pos(tab.pos[0]);
    return at(lp.line, lp.column, 'yaml-syntax', 'YAML syntax error: a tab is used for indentation', TAB_HINT);
  }
  const [start, , end] = doc.range ?? [0, text.length, text.length];
  const j = fastError as { reason?: string; mark?: { position: number } } | undefined;
  if (j?.mark && j.reason && /bad indentation/.test(j.reason) && j.mark.position >= start && j.mark.position <= end) {
    const indented = overIndented(text, j.mark.position);
    if (indented) {
      const lp = lines.pos(indented.offset);
      return at(lp.line, lp.column, 'yaml-syntax', `YAML syntax error: ${indented.message}`, INDENT_HINT);
    }
  }
  const first = errors[0];
  const lp = lines.pos(first?.pos[0] ?? start);
  at(lp.line, lp.column, 'yaml-syntax', `YAML syntax error: ${firstLine(first?.message ?? 'document could not be parsed')}`);
}

/** The key at `offset`'s line, indented more than the key above it: what to say and where (its first character). */
function overIndented(text: string, offset: number): { offset: number; message: string } | undefined {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const line = lineOf(text, lineStart);
  const indent = line.length - line.trimStart().length;
  const key = /^\s*(?:-\s+)?([^\s:#][^:#]*?)\s*:/.exec(line)?.[1];
  // The nearest line above with content: the key this one was meant to be a sibling (or child) of.
  let p = lineStart - 1;
  while (p > 0) {
    const s = text.lastIndexOf('\n', p - 1) + 1;
    const above = lineOf(text, s);
    p = s - 1;
    if (above.trim() === '' || above.trim().startsWith('#')) continue;
    const aboveIndent = above.length - above.trimStart().length;
    const aboveKey = /^\s*(?:-\s+)?([^\s:#][^:#]*?)\s*:/.exec(above)?.[1];
    if (!key || !aboveKey) return undefined;
    const what = `"${key}" is indented by ${indent} spaces`;
    const rel = aboveIndent < indent ? `more than "${aboveKey}" on the line above (${aboveIndent}), which already has a value` : `differently from "${aboveKey}" on the line above (${aboveIndent})`;
    return { offset: lineStart + indent, message: `${what}, ${rel}` };
  }
  return undefined;
}

function lineOf(text: string, start: number): string {
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '');
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * What a document that could not be parsed would have defined, read from its text: its kind and
 * name, so that references to it are not reported as unknown and counts over its kind (a tenant
 * "has no apps") are not trusted. Either is undefined when the text does not say.
 */
export function brokenDocument(doc: Document, text: string): { kind?: string; name?: string } {
  const [start, , end] = doc.range ?? [0, text.length, text.length];
  const src = text.slice(start, end);
  const kind = /^kind:\s*["']?([A-Za-z]+)/m.exec(src)?.[1];
  const name = /^metadata:[^\S\n]*(?:\{[^}\n]*?\bname:\s*["']?([A-Za-z0-9][\w.-]*)|\n(?:[ \t]+.*\n)*?[ \t]+name:\s*["']?([A-Za-z0-9][\w.-]*))/m.exec(src);
  return { kind, name: name?.[1] ?? name?.[2] };
}
