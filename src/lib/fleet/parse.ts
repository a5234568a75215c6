import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';
import { MAX_FILE_BYTES, type SourceFile } from './source.js';
import type { PathSeg, Problem } from './problems.js';
import { fastDocuments } from './fast-yaml.js';
import { Y, YAML_OPTIONS } from './yaml-lib.js';
import { badCharacter, characterName, countMarkers, lexScan } from './yaml-scan.js';
import { FileTree, MAX_FLOW_DEPTH, TREE_TOKEN_BUDGET } from './yaml-tree.js';
import { directiveProblems, nodeProblems, type At } from './yaml-checks.js';
import { brokenDocument, documentSyntaxError } from './yaml-syntax.js';

/** One YAML document of a fleet file, with what is needed to point back at its source. */
export class ParsedDoc {
  constructor(
    readonly file: string,
    /** 0-based index of the document among the non-empty documents of its file. */
    readonly index: number,
    readonly value: unknown,
    private readonly tree: FileTree,
  ) {}

  /** Where the document starts (1-based). */
  get line(): number {
    return locate(this, []).line;
  }

  get column(): number {
    return locate(this, []).column;
  }

  /** @internal for locate */
  at(path: readonly PathSeg[], onKey: boolean): { line: number; column: number } {
    const t = this.tree.tree(this.index);
    if (!t) return this.tree.lines.pos(this.tree.start(this.index));
    return this.tree.lines.pos(t.offset + offsetOf(t.doc, path, onKey));
  }
}

export interface ParsedFile {
  path: string;
  text: string;
  docs: ParsedDoc[];
  /**
   * Documents that could not be parsed, with what their text says they define (kind, name): the
   * cross-reference rules neither call those unknown nor count over their kind. One without a
   * readable kind (or a file not parsed at all) could have been anything.
   */
  broken: { kind?: string; name?: string }[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Aliases beyond this count in one document mean an alias bomb ("billion laughs"). */
const MAX_ALIASES = 200;
/**
 * Documents (`---` and `...` markers) one file may hold: a fleet of 20,000 nodes in one file has
 * about 22,000. Checked before parsing, so that a file of a million empty documents costs nothing.
 */
export const MAX_FILE_DOCUMENTS = 50_000;
const TOO_DEEP_HINT = 'A fleet document needs only a few levels of nesting.';

export function parseFile(f: SourceFile, problems: Problem[]): ParsedFile | undefined {
  const at: At = (line, column, rule, message, hint) => problems.push({ severity: 'error', rule, file: f.path, line, column, path: '', message, hint });
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
  const out: ParsedFile = { path: f.path, text, docs: [], broken: [] };
  const bad = badCharacter(text);
  if (bad) {
    const { line, column } = new FileTree(text, 0).lines.pos(bad.index);
    out.broken.push({});
    at(line, column, 'yaml-control-character', `file contains the character ${characterName(bad.code)}, which a fleet file may not contain (not even in a comment)`, 'Remove it: fleet files are printable text; tabs, line feeds and carriage returns are the only control characters allowed.');
    return out;
  }
  if (countMarkers(text, MAX_FILE_DOCUMENTS) > MAX_FILE_DOCUMENTS) {
    out.broken.push({});
    at(1, 1, 'too-many-documents', `file has more than ${MAX_FILE_DOCUMENTS.toLocaleString('en-US')} documents`, 'Split it into several files.');
    return out;
  }
  const why: { error?: unknown } = {};
  const fast = fastDocuments(text, why);
  if (fast) {
    const tree = new FileTree(text, fast.length);
    out.docs = fast.map((v, i) => new ParsedDoc(f.path, i, v, tree));
    return out;
  }
  slowPath(text, why.error, at, out);
  return out;
}

/**
 * Files the fast path could not read (anchors, aliases, tags, directives, or a problem js-yaml
 * found) go through the `yaml` package, which knows positions and owns error reporting. Its
 * cost is bounded first: the lexer's scan refuses deep nesting and more tokens than the budget.
 */
function slowPath(text: string, fastError: unknown, at: At, out: ParsedFile): void {
  const scan = lexScan(text, TREE_TOKEN_BUDGET, MAX_FLOW_DEPTH);
  // The documents kept are filled in below; the tree only reads them when a problem is located.
  const kept: Document[] = [];
  const tree = new FileTree(text, 0, kept);
  const lines = tree.lines;
  if (scan.tooDeepAt !== undefined || scan.tooMany) out.broken.push({});
  if (scan.tooDeepAt !== undefined) {
    const p = lines.pos(scan.tooDeepAt);
    return at(p.line, p.column, 'yaml-too-deep', `YAML is nested more than ${MAX_FLOW_DEPTH} levels deep`, TOO_DEEP_HINT);
  }
  if (scan.tooMany) return tooComplex(fastError, at);
  const all = Y().parseAllDocuments(text, YAML_OPTIONS);
  const docs: Document[] = Array.isArray(all) ? all : [];
  if (docs.length === 0 && text.trim() !== '' && !/^(\s*#.*)*\s*$/.test(text)) {
    // parseAllDocuments only returns nothing for blank or comment-only input; anything else is a bug in it.
    out.broken.push({});
    return at(1, 1, 'yaml-syntax', 'YAML could not be parsed');
  }
  const values: unknown[] = [];
  const seen = new Set<number>();
  for (const doc of docs) {
    let ok = directiveProblems(doc, text, lines, seen, at);
    const deep = doc.errors.find((err) => err.code === 'RESOURCE_EXHAUSTION');
    if (deep) {
      const lp = lines.pos(deep.pos[0]);
      at(lp.line, lp.column, 'yaml-too-deep', 'YAML is nested too deeply', TOO_DEEP_HINT);
    } else if (doc.errors.length > 0) documentSyntaxError(doc, text, lines, fastError, at);
    if (doc.errors.length > 0) {
      ok = false;
      out.broken.push(brokenDocument(doc, text));
    }
    if (!ok || isEmptyDoc(doc)) continue;
    if (!nodeProblems(doc, lines, at)) continue;
    try {
      values.push(doc.toJS({ maxAliasCount: MAX_ALIASES }));
    } catch (e) {
      const lp = lines.pos(doc.contents?.range?.[0] ?? 0);
      if (e instanceof RangeError) at(lp.line, lp.column, 'yaml-too-deep', 'YAML is nested too deeply', TOO_DEEP_HINT);
      else at(lp.line, lp.column, 'yaml-alias-bomb', `document expands too many aliases: ${firstLine((e as Error).message)}`, 'Write the values out instead of using many YAML aliases.');
      continue;
    }
    kept.push(doc);
  }
  out.docs = values.map((v, i) => new ParsedDoc(out.path, i, v, tree));
}

/** A file too large for the slow path: js-yaml's own finding if it had one, else the limit. */
function tooComplex(fastError: unknown, at: At): void {
  const e = fastError as { reason?: string; mark?: { line: number; column: number } } | undefined;
  if (e?.mark && e.reason) {
    const [line, column] = [e.mark.line + 1, e.mark.column + 1];
    if (/duplicated mapping key/.test(e.reason)) return at(line, column, 'duplicate-key', 'duplicate key: a key may appear only once in a mapping');
    if (/maxDepth/.test(e.reason)) return at(line, column, 'yaml-too-deep', 'YAML is nested too deeply', TOO_DEEP_HINT);
    return at(line, column, 'yaml-syntax', `YAML syntax error: ${e.reason}`);
  }
  at(1, 1, 'yaml-too-complex', `file uses anchors, aliases, tags, directives or empty scalar documents and has more than ${TREE_TOKEN_BUDGET.toLocaleString('en-US')} YAML tokens, more than the detailed parser is allowed to read`, 'Split the file into smaller ones, or write the values out instead of anchors and aliases.');
}

/** An empty document: nothing at all, or the empty scalar after a bare `---`. An explicit `null` is not empty. */
function isEmptyDoc(doc: Document): boolean {
  const c = doc.contents as (YamlNode & { value?: unknown }) | null;
  return c === null || (Y().isScalar(c) && c.value === null && c.range !== undefined && c.range !== null && c.range[0] === c.range[1]);
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

function keyOf(n: unknown): string {
  return String(Y().isScalar(n) ? n.value : n);
}

/** Map entries by key, for maps large enough that a linear search per lookup would add up. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  const { isPair } = Y();
  if (map.items.length < 16) return map.items.find((p) => isPair(p) && keyOf(p.key) === key) as Pair | undefined;
  let idx = pairIndex.get(map);
  if (!idx) {
    idx = new Map();
    for (const p of map.items) if (isPair(p) && !idx.has(keyOf(p.key))) idx.set(keyOf(p.key), p as Pair);
    pairIndex.set(map, idx);
  }
  return idx.get(key);
}

/** The offset of the deepest node that exists along a field path (its key with `onKey`). */
function offsetOf(doc: Document, path: readonly PathSeg[], onKey: boolean): number {
  const { isMap, isSeq } = Y();
  let node: unknown = doc.contents;
  let pos = node && (node as YamlNode).range ? (node as YamlNode).range![0] : 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = pairOf(node, String(seg));
      if (!pair) break;
      const keyNode = pair.key as YamlNode | null;
      const valNode = pair.value as YamlNode | null;
      if (i === path.length - 1 && onKey && keyNode?.range) return keyNode.range[0];
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
  return pos;
}

/**
 * The source position of a field path in a document: the deepest node that exists along the
 * path. With `onKey`, a map entry's key is pointed at rather than its value (for unknown fields).
 * A document too large for a syntax tree is pointed at where it starts.
 */
export function locate(d: ParsedDoc, path: readonly PathSeg[], onKey = false): { line: number; column: number } {
  return d.at(path, onKey);
}
