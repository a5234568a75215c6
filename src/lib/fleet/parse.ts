import { createRequire } from 'node:module';
import type { Document, LineCounter, Node as YamlNode } from 'yaml';
import { MAX_FILE_BYTES, type SourceFile } from './source.js';
import type { PathSeg, Problem } from './problems.js';
import { fastDocuments } from './fast-yaml.js';

/**
 * The `yaml` package (syntax trees with positions) is loaded only when a file needs it: a fleet
 * whose files all take the fast path never pays for loading it.
 */
let yamlLib: typeof import('yaml') | undefined;
const Y = (): typeof import('yaml') => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));

const YAML_OPTIONS = { uniqueKeys: true, prettyErrors: true, strict: true, version: '1.2' } as const;

/** A file's full YAML syntax tree (with positions), built on first use: most files never need it. */
class FileTree {
  private tree?: { docs: Document[]; lines: LineCounter };
  constructor(readonly text: string) {}

  get(): { docs: Document[]; lines: LineCounter } {
    if (!this.tree) {
      const lines = new (Y().LineCounter)();
      let docs: Document[] = [];
      try {
        const parsed = Y().parseAllDocuments(this.text, { ...YAML_OPTIONS, lineCounter: lines });
        docs = Array.isArray(parsed) ? parsed : [];
      } catch {
        docs = [];
      }
      this.tree = { docs, lines };
    }
    return this.tree;
  }

  private nonEmptyDocs?: Document[];

  /** The `k`-th document that has content (empty documents are never fleet documents). */
  nonEmpty(k: number): Document | undefined {
    this.nonEmptyDocs ??= this.get().docs.filter((d) => !isEmptyDoc(d));
    return this.nonEmptyDocs[k];
  }
}

/** One YAML document of a fleet file, with what is needed to point back at its source. */
export class ParsedDoc {
  constructor(
    readonly file: string,
    /** 0-based index of the document among the non-empty documents of its file. */
    readonly index: number,
    readonly value: unknown,
    private readonly tree: FileTree,
  ) {}

  get doc(): Document | undefined {
    return this.tree.nonEmpty(this.index);
  }

  get lines(): LineCounter {
    return this.tree.get().lines;
  }

  /** Where the document starts (1-based). */
  get line(): number {
    return locate(this, []).line;
  }

  get column(): number {
    return locate(this, []).column;
  }
}

export interface ParsedFile {
  path: string;
  text: string;
  docs: ParsedDoc[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Aliases beyond this count in one document mean an alias bomb ("billion laughs"). */
const MAX_ALIASES = 200;
/** YAML tags a fleet may use: the core schema's own. Anything else (!!binary, !custom) is refused. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

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
    at(firstBadLine(f.bytes), 1, 'not-utf8', 'file is not valid UTF-8', 'Save the file as UTF-8.');
    return undefined;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const tree = new FileTree(text);
  const fast = fastDocuments(text);
  if (fast) return { path: f.path, text, docs: fast.map((v, i) => new ParsedDoc(f.path, i, v, tree)) };

  const out: ParsedFile = { path: f.path, text, docs: [] };
  const deep = tooDeep(text);
  if (deep) {
    at(deep.line, deep.column, 'yaml-too-deep', `YAML is nested more than ${MAX_FLOW_DEPTH} levels deep`, 'A fleet document needs only a few levels of nesting.');
    return out;
  }
  const { docs, lines } = tree.get();
  if (docs.length === 0 && text.trim() !== '' && !/^(\s*#.*)*\s*$/.test(text)) {
    // parseAllDocuments only returns nothing for blank or comment-only input; anything else is a bug in it.
    at(1, 1, 'yaml-syntax', 'YAML could not be parsed');
    return out;
  }
  let k = 0;
  for (const doc of docs) {
    for (const err of doc.errors) {
      const lp = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
      if (err.code === 'DUPLICATE_KEY') at(lp.line, lp.col, 'duplicate-key', 'duplicate key: a key may appear only once in a mapping');
      else if (err.code === 'RESOURCE_EXHAUSTION') at(lp.line, lp.col, 'yaml-too-deep', 'YAML is nested too deeply', 'A fleet document needs only a few levels of nesting.');
      else at(lp.line, lp.col, 'yaml-syntax', `YAML syntax error: ${firstLine(err.message)}`);
    }
    if (doc.errors.length || isEmptyDoc(doc)) continue;
    const index = k++;
    try {
      if (text.includes('!') && !tagsOk(doc, lines, at)) continue;
    } catch {
      at(1, 1, 'yaml-too-deep', 'YAML is nested too deeply', 'A fleet document needs only a few levels of nesting.');
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      const lp = lines.linePos(doc.contents?.range?.[0] ?? 0);
      if (e instanceof RangeError) at(lp.line, lp.col, 'yaml-too-deep', 'YAML is nested too deeply', 'A fleet document needs only a few levels of nesting.');
      else at(lp.line, lp.col, 'yaml-alias-bomb', `document expands too many aliases: ${firstLine((e as Error).message)}`, 'Write the values out instead of using many YAML aliases.');
      continue;
    }
    out.docs.push(new ParsedDoc(f.path, index, value, tree));
  }
  return out;
}

/** An empty document: nothing at all, or the empty scalar after a bare `---`. An explicit `null` is not empty. */
function isEmptyDoc(doc: Document): boolean {
  const c = doc.contents as (YamlNode & { value?: unknown }) | null;
  return c === null || (Y().isScalar(c) && c.value === null && c.range !== undefined && c.range !== null && c.range[0] === c.range[1]);
}

const MAX_FLOW_DEPTH = 64;

/**
 * A cheap scan for flow collections nested absurdly deep (`[[[[...`), which the yaml parser
 * would take seconds to reject. Quotes and comments are skipped roughly; a fleet needs a depth
 * of five or six, so the limit leaves a wide margin.
 */
function tooDeep(text: string): { line: number; column: number } | undefined {
  let depth = 0;
  let quote = '';
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
      if (quote === '') continue;
    }
    if (quote) {
      if (ch === quote && !(quote === '"' && text[i - 1] === '\\')) quote = '';
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl - 1;
    } else if (ch === '[' || ch === '{') {
      if (++depth > MAX_FLOW_DEPTH) return { line, column: i - lineStart + 1 };
    } else if (ch === ']' || ch === '}') {
      depth = Math.max(0, depth - 1);
    }
  }
  return undefined;
}

function tagsOk(doc: Document, lines: LineCounter, at: (line: number, col: number, rule: string, msg: string, hint?: string) => void): boolean {
  const { isScalar, isMap, isSeq, visit } = Y();
  let ok = true;
  visit(doc, (_key, node) => {
    const n = node as YamlNode;
    if ((isScalar(n) || isMap(n) || isSeq(n)) && n.tag && !CORE_TAGS.has(n.tag)) {
      const lp = lines.linePos(n.range?.[0] ?? 0);
      at(lp.line, lp.col, 'yaml-tag', `YAML tag ${n.tag.replace('tag:yaml.org,2002:', '!!')} is not supported`, 'Remove the tag: fleet values are plain strings, numbers, booleans, lists and mappings.');
      ok = false;
    }
  });
  return ok;
}

/** The line of the first byte that is not UTF-8, found by bisection on the decoder. */
function firstBadLine(bytes: Buffer): number {
  let lo = 0;
  let hi = bytes.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    try {
      // A fresh decoder each time: streaming mode keeps state between calls.
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  let line = 1;
  for (let i = 0; i < lo; i++) if (bytes[i] === 10) line++;
  return line;
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function keyOf(n: unknown): unknown {
  return Y().isScalar(n) ? n.value : n;
}

/**
 * The source position of a field path in a document: the deepest node that exists along the
 * path. With `onKey`, a map entry's key is pointed at rather than its value (for unknown fields).
 */
export function locate(d: ParsedDoc, path: readonly PathSeg[], onKey = false): { line: number; column: number } {
  const { isMap, isSeq, isPair } = Y();
  const doc = d.doc;
  let node: unknown = doc?.contents;
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
