import type { Document, Scalar, YAMLMap } from 'yaml';
import { parseSshPublicKey } from '../fleet/ssh-public-key.js';
import { Y, YAML_OPTIONS } from '../fleet/yaml-lib.js';
import { recordInNodeFiles, type EditResult, type Recorded } from './record-credential.js';

const isMap = (n: unknown): n is YAMLMap => !!n && Y().isMap(n);

/**
 * The node's tunnel key into its document, as record-credential does for the credential: the
 * value of spec.tunnelKey replaced, or one line (one pair in a flow spec) inserted at the top of
 * spec; nothing else of the file changes. The value is written double-quoted (a key line has
 * spaces, and `+`, `/`, `=`), with the node's name as the comment.
 */
export function setTunnelKeyInText(text: string, node: string, key: string): EditResult {
  const k = parseSshPublicKey(key);
  if (typeof k === 'string') return { error: `not a public key: ${k}` };
  const value = JSON.stringify(`${k.line.split(' ').slice(0, 2).join(' ')} ${node}`);
  const docs = Y().parseAllDocuments(text, YAML_OPTIONS) as Document[] | { errors: unknown[] };
  if (!Array.isArray(docs)) return { error: 'the file is not a YAML stream' };
  const mine = docs.filter((d) => d.errors.length === 0 && d.get('kind') === 'Node' && d.getIn(['metadata', 'name']) === node);
  if (mine.length !== 1) return { error: mine.length === 0 ? `no Node document named ${node}` : `node ${node} is defined ${mine.length} times` };
  const spec = mine[0].get('spec', true);
  if (!isMap(spec)) return { error: 'its spec is not a mapping' };
  const old = spec.get('tunnelKey', true) as Scalar | undefined;
  if (old !== undefined) {
    if (!Y().isScalar(old) || !old.range) return { error: 'its spec.tunnelKey is not a plain value' };
    return { text: text.slice(0, old.range[0]) + value + text.slice(old.range[1]) };
  }
  if (spec.flow) {
    if (!spec.range || text[spec.range[0]] !== '{') return { error: 'its spec is not a plain flow mapping' };
    const at = spec.range[0] + 1;
    return { text: text.slice(0, at) + ` tunnelKey: ${value},` + text.slice(at) };
  }
  const first = spec.items[0]?.key as { range?: [number, number, number] } | undefined;
  if (!first?.range) return { error: 'its spec is empty' };
  const lineStart = text.lastIndexOf('\n', first.range[0] - 1) + 1;
  const indent = text.slice(lineStart, first.range[0]);
  if (!/^ *$/.test(indent)) return { error: 'its spec does not start on a line of its own' };
  return { text: text.slice(0, lineStart) + `${indent}tunnelKey: ${value}\n` + text.slice(lineStart) };
}

/** Writes each node's tunnel key into its file below fleetRoot (no link followed), read back and checked. */
export function recordTunnelKeys(fleetRoot: string, entries: { node: string; file: string; key: string }[]): Recorded[] {
  return recordInNodeFiles(fleetRoot, entries, {
    what: 'tunnel keys',
    one: 'tunnel key',
    edit: (text, e) => setTunnelKeyInText(text, e.node, e.key),
    readsBack: (d, e) => String(d?.getIn(['spec', 'tunnelKey']) ?? '').startsWith(`${e.key} `),
    byHand: (e) => `tunnelKey: "${e.key} ${e.node}"`,
  });
}
