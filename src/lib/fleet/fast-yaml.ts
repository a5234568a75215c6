import jsyaml from 'js-yaml';
import { documentSlices } from './yaml-scan.js';

/**
 * The fast path of the YAML reader. The `yaml` package keeps a full syntax tree with positions
 * (needed to point at a field), but parses about ten times slower than js-yaml; a fleet of
 * 10,000 nodes is 12,000 documents. So files are read with js-yaml first, and the tree is
 * built only for files that have a problem (see parse.ts). Only plain files take this path:
 * anything with anchors, aliases, tags or directives, and any file js-yaml rejects, goes
 * through `yaml`, which owns all error reporting.
 *
 * The scalar types copy YAML 1.2's core schema exactly as `yaml` resolves it (js-yaml's own
 * core schema also reads 0b11 and 1_000.5 as numbers), so both paths give the same values.
 */
const int = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/.test(s),
  construct: (s: string) => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : Number(s)),
  predicate: (v: unknown) => typeof v === 'number' && Number.isInteger(v),
});
const float = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/.test(s),
  construct: (s: string) => {
    if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
    if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
    return Number(s);
  },
  predicate: (v: unknown) => typeof v === 'number',
});
const bool = new jsyaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && /^(?:true|True|TRUE|false|False|FALSE)$/.test(s),
  construct: (s: string) => s === 'true' || s === 'True' || s === 'TRUE',
  predicate: (v: unknown) => typeof v === 'boolean',
});
const nul = new jsyaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (s: string | null) => s === null || s === '' || /^(?:~|null|Null|NULL)$/.test(s),
  construct: () => null,
  predicate: (v: unknown) => v === null,
});
const SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({ implicit: [nul, bool, int, float] });

/** Characters that make a file take the slow path: anchors, aliases, tags, directives. */
const NOT_PLAIN = /[&*!]|^%/m;

/**
 * The documents of a plain file as values, or undefined when the file must take the slow path.
 * Every document must be a mapping. Empty documents (a trailing `---`) are skipped, but js-yaml
 * reads them as `null` just like an explicit `null`, which is an error: so a file with either
 * is read here only if its documents with content are exactly the mappings read. A js-yaml
 * error is left in `why` (the slow path reports it when the file is too large for `yaml`).
 */
export function fastDocuments(text: string, why: { error?: unknown } = {}): Record<string, unknown>[] | undefined {
  if (NOT_PLAIN.test(text)) return undefined;
  let docs: unknown[];
  try {
    docs = jsyaml.loadAll(text, null, { schema: SCHEMA, json: false });
  } catch (e) {
    why.error = e;
    return undefined;
  }
  const out: Record<string, unknown>[] = [];
  let nulls = 0;
  for (const d of docs) {
    if (d === null) nulls++;
    else if (typeof d !== 'object' || Array.isArray(d)) return undefined;
    else out.push(d as Record<string, unknown>);
  }
  if (nulls > 0 && documentSlices(text).length !== out.length) return undefined;
  return out;
}
