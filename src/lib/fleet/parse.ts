import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, isPair, type Document, type Node as YamlNode } from 'yaml';
import { MAX_FILE_BYTES, type SourceFile } from './source.js';
import type { PathSeg, Problem } from './problems.js';

/** One YAML document of a fleet file, with what is needed to point back at its source. */
export interface ParsedDoc {
  file: string;
  /** 0-based index of the document within its file. */
  index: number;
  value: unknown;
  doc: Document;
  lines: LineCounter;
  line: number;
  column: number;
}

export interface ParsedFile {
  path: string;
  text: string;
  docs: ParsedDoc[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Aliases beyond this count in one document mean an alias bomb ("billion laughs"). */
const MAX_ALIASES = 200;

export function parseFile(f: SourceFile, problems: Problem[]): ParsedFile | undefined {
  const at = (line: number, column: number, rule: string, message: string, hint?: string) =>
    problems.push({ severity: 'error', rule, file: f.path, line, column, path: '', message, hint });
  if (f.bytes.length > MAX_FILE_BYTES) {
    at(1, 1, 'file-too-large', `file is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`, 'Split it into several files; a fleet document is never this large.');
    return undefined;
  }
  let text: string;
  try {
    text = utf8.decode(f.bytes);
  } catch {
    // Find the first bad byte so the line number is useful.
    let good = 0;
    for (let end = Math.min(f.bytes.length, 4096); ; end = Math.min(f.bytes.length, end * 2)) {
      try {
        utf8.decode(f.bytes.subarray(0, end));
        good = end;
      } catch {
        break;
      }
      if (end === f.bytes.length) break;
    }
    const line = f.bytes.subarray(0, good).toString('latin1').split('\n').length;
    at(line, 1, 'not-utf8', 'file is not valid UTF-8', 'Save the file as UTF-8.');
    return undefined;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = new LineCounter();
  let docs: Document[];
  try {
    const parsed = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true, strict: true, version: '1.2' });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch (e) {
    at(1, 1, 'yaml-syntax', `YAML could not be parsed: ${(e as Error).message}`);
    return undefined;
  }
  const out: ParsedFile = { path: f.path, text, docs: [] };
  let failed = false;
  docs.forEach((doc, index) => {
    for (const err of doc.errors) {
      const lp = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
      const dup = err.code === 'DUPLICATE_KEY';
      at(lp.line, lp.col, dup ? 'duplicate-key' : 'yaml-syntax', dup ? 'duplicate key: a key may appear only once in a mapping' : `YAML syntax error: ${firstLine(err.message)}`);
      failed = true;
    }
    if (doc.errors.length) return;
    if (doc.contents === null) return; // an empty document, e.g. after a trailing ---
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      const lp = lines.linePos(doc.contents?.range?.[0] ?? 0);
      at(lp.line, lp.col, 'yaml-alias-bomb', `document expands too many aliases: ${firstLine((e as Error).message)}`, 'Write the values out instead of using many YAML aliases.');
      failed = true;
      return;
    }
    const lp = lines.linePos(doc.contents?.range?.[0] ?? 0);
    out.docs.push({ file: f.path, index, value, doc, lines, line: lp.line, column: lp.col });
  });
  return failed && out.docs.length === 0 ? out : out;
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function keyOf(n: unknown): unknown {
  return isScalar(n) ? n.value : n;
}

/**
 * The source position of a field path in a document: the deepest node that exists along the
 * path. With `onKey`, a map entry's key is pointed at rather than its value (for unknown fields).
 */
export function locate(d: ParsedDoc, path: readonly PathSeg[], onKey = false): { line: number; column: number } {
  let node: unknown = d.doc.contents;
  let pos = node && (node as YamlNode).range ? (node as YamlNode).range![0] : 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && String(keyOf(p.key)) === String(seg));
      if (!pair) break;
      const keyNode = pair.key as YamlNode | null;
      const valNode = pair.value as YamlNode | null;
      const last = i === path.length - 1;
      if (last && onKey && keyNode?.range) {
        pos = keyNode.range[0];
        break;
      }
      if (valNode?.range) pos = valNode.range[0];
      else if (keyNode?.range) pos = keyNode.range[0];
      node = valNode;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) break;
      if (item.range) pos = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  const lp = d.lines.linePos(pos);
  return { line: lp.line, column: lp.col };
}
