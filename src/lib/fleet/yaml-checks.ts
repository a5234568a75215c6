import type { Document, Node as YamlNode } from 'yaml';
import { Y } from './yaml-lib.js';
import type { LineIndex } from './yaml-scan.js';

export type At = (line: number, column: number, rule: string, message: string, hint?: string) => void;

/** YAML tags a fleet may use: the core schema's own. Anything else (!!binary, !custom) is refused. */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));
const DIRECTIVE_HINT = 'Remove the directive: fleet files are YAML 1.2 with the core schema, and need no directives.';

/**
 * Directives change how a document is read: `%YAML 1.1` turns on merge keys, `yes` as true and
 * octal and base-60 numbers, and `%TAG` renames tags. Only `%YAML 1.2` (which changes nothing)
 * is allowed. `seen` keeps a directive shared by several documents from being reported twice.
 */
export function directiveProblems(doc: Document, text: string, lines: LineIndex, seen: Set<number>, at: At): boolean {
  let ok = true;
  // Reported at the start of the directive's line, quoting it.
  const report = (offset: number) => {
    ok = false;
    const start = offset < 0 ? 0 : text.lastIndexOf('\n', offset - 1) + 1;
    if (seen.has(start)) return;
    seen.add(start);
    const end = text.indexOf('\n', start);
    const directive = text.slice(start, end < 0 ? undefined : end).trim().slice(0, 80);
    const p = lines.pos(start);
    at(p.line, p.column, 'yaml-directive', `the directive "${directive}" is not allowed: fleet files are read as YAML 1.2 with the core schema`, DIRECTIVE_HINT);
  };
  const start = doc.range?.[0] ?? 0;
  const y = doc.directives?.yaml;
  if (y?.explicit && y.version !== '1.2') report(text.lastIndexOf('%YAML', start));
  const tags = Object.entries(doc.directives?.tags ?? {});
  if (tags.some(([handle, prefix]) => handle !== '!!' || prefix !== 'tag:yaml.org,2002:')) report(text.lastIndexOf('%TAG', start));
  for (const w of doc.warnings) if (w.code === 'BAD_DIRECTIVE') report(w.pos[0]);
  return ok;
}

/**
 * One pass over a document's nodes: tags outside the core schema, and duplicate keys. Keys are
 * compared as the JavaScript value will name them (`1` and `"1"` are the same key), in one set
 * per mapping: the yaml package's own check compares each key with every other one.
 */
export function nodeProblems(doc: Document, lines: LineIndex, at: At): boolean {
  const { isScalar, isMap, isSeq, visit } = Y();
  let ok = true;
  const fail = (n: YamlNode | null | undefined, rule: string, message: string, hint?: string) => {
    const p = lines.pos(n?.range?.[0] ?? 0);
    at(p.line, p.column, rule, message, hint);
    ok = false;
  };
  // Keys are plain values: an alias would have to be resolved (a walk of the document per key).
  const keyName = (k: unknown): string | undefined => (k === null || k === undefined ? '' : isScalar(k) ? String(k.value) : undefined);
  try {
    visit(doc, (_key, node) => {
      const n = node as YamlNode;
      if ((isScalar(n) || isMap(n) || isSeq(n)) && n.tag && !CORE_TAGS.has(n.tag)) {
        fail(n, 'yaml-tag', `YAML tag ${n.tag.replace('tag:yaml.org,2002:', '!!')} is not supported`, 'Remove the tag: fleet values are plain strings, numbers, booleans, lists and mappings.');
      }
      if (!isMap(n)) return;
      const keys = new Set<string>();
      for (const pair of n.items) {
        const name = keyName(pair.key);
        if (name === undefined) fail(pair.key as YamlNode, 'yaml-syntax', 'a mapping key must be a plain value, not an alias, a list or a mapping');
        else if (keys.has(name)) fail(pair.key as YamlNode, 'duplicate-key', 'duplicate key: a key may appear only once in a mapping');
        else keys.add(name);
      }
    });
  } catch {
    // visit recurses: a document deep enough to overflow the stack is refused whole.
    fail(doc.contents, 'yaml-too-deep', 'YAML is nested too deeply', 'A fleet document needs only a few levels of nesting.');
  }
  return ok;
}
