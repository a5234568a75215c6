import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Document, Scalar, YAMLMap } from 'yaml';
import { EdgectlError } from '../errors.js';
import { RE } from '../fleet/values.js';
import { Y, YAML_OPTIONS } from '../fleet/yaml-lib.js';
import { NoFollowTree } from '../safe-fs/no-follow-tree.js';
import { MAX_FILE_BYTES } from '../fleet/source-types.js';

/**
 * bootstrap writes each node's credential hash into the fleet repo, as an edit of the node's own
 * document that the operator reviews and commits: `spec.credential.sha256`. The edit touches only
 * those bytes (the value replaced, or one line inserted at the top of `spec`), so comments,
 * ordering and every other document of the file stay as they were. Anything unusual (a flow-style
 * spec, a credential that is not a map, the node in two documents) is refused, never guessed: the
 * operator is told the line to add instead.
 */
export type EditResult = { text: string } | { error: string };

const isMap = (n: unknown): n is YAMLMap => !!n && Y().isMap(n);

export function setCredentialInText(text: string, node: string, sha256: string): EditResult {
  if (!RE.sha256.test(sha256)) return { error: `"${sha256.slice(0, 80)}" is not a sha256 hex digest` };
  const docs = Y().parseAllDocuments(text, YAML_OPTIONS) as Document[] | { errors: unknown[] };
  if (!Array.isArray(docs)) return { error: 'the file is not a YAML stream' };
  const mine = docs.filter((d) => d.errors.length === 0 && d.get('kind') === 'Node' && d.getIn(['metadata', 'name']) === node);
  if (mine.length !== 1) return { error: mine.length === 0 ? `no Node document named ${node}` : `node ${node} is defined ${mine.length} times` };
  const doc = mine[0];
  const spec = doc.get('spec', true);
  if (!isMap(spec)) return { error: 'its spec is not a mapping' };
  const cred = spec.get('credential', true);
  if (cred !== undefined) {
    if (!isMap(cred)) return { error: 'its spec.credential is not a mapping' };
    const value = cred.get('sha256', true) as Scalar | undefined;
    if (value === undefined) {
      if (!cred.flow || cred.items.length > 0 || !cred.range) return { error: 'its spec.credential has no sha256 to replace' };
      // `credential: {}`: the empty flow map becomes the recorded one.
      return { text: text.slice(0, cred.range[0]) + `{ sha256: ${sha256} }` + text.slice(cred.range[1]) };
    }
    if (!Y().isScalar(value) || !value.range) return { error: 'its spec.credential.sha256 is not a plain value' };
    return { text: text.slice(0, value.range[0]) + sha256 + text.slice(value.range[1]) };
  }
  if (spec.flow) {
    // `spec: { role: edge, … }`: the pair goes first inside the braces.
    if (!spec.range || text[spec.range[0]] !== '{') return { error: 'its spec is not a plain flow mapping' };
    const at = spec.range[0] + 1;
    return { text: text.slice(0, at) + ` credential: { sha256: ${sha256} },` + text.slice(at) };
  }
  const first = spec.items[0]?.key as { range?: [number, number, number] } | undefined;
  if (!first?.range) return { error: 'its spec is empty' };
  const lineStart = text.lastIndexOf('\n', first.range[0] - 1) + 1;
  const indent = text.slice(lineStart, first.range[0]);
  if (!/^ *$/.test(indent)) return { error: 'its spec does not start on a line of its own' };
  return { text: text.slice(0, lineStart) + `${indent}credential: { sha256: ${sha256} }\n` + text.slice(lineStart) };
}

/** What one recorded credential did to the fleet. */
export interface Recorded { node: string; file: string }

/**
 * Writes each node's hash into its document's file, below `fleetRoot` without following any link
 * (a fleet that commits a symlink where a node file is gets refused, never written through). Each
 * file is replaced whole by rename(2) from a sibling temp file, then read back and checked.
 */
export function recordCredentials(fleetRoot: string, entries: { node: string; file: string; sha256: string }[]): Recorded[] {
  return recordInNodeFiles(fleetRoot, entries, {
    what: 'credentials',
    one: 'credential',
    edit: (text, e) => setCredentialInText(text, e.node, e.sha256),
    readsBack: (d, e) => d?.getIn(['spec', 'credential', 'sha256']) === e.sha256,
    byHand: (e) => `credential: { sha256: ${e.sha256} }`,
  });
}

/** One value bootstrap writes into nodes' documents (the credential hash, the tunnel key). */
export interface NodeFieldEdit<E extends { node: string; file: string }> {
  /** For messages: what is recorded (plural), and one of it. */
  what: string;
  one: string;
  /** The file's text with e's value in e.node's document, or why not. */
  edit: (text: string, e: E) => EditResult;
  /** The node's document, parsed again from the edited text, holds e's value. */
  readsBack: (doc: Document | undefined, e: E) => boolean;
  /** The line the operator adds by hand when the edit is refused. */
  byHand: (e: E) => string;
}

/**
 * Writes each entry's value into its node's file below `fleetRoot` without following any link,
 * all the entries of a file in one edit; the edited text is parsed again and every value checked
 * before the file is replaced (rename from a sibling temp file, fsynced). Refusals name the file,
 * the node and the line to add by hand.
 */
export function recordInNodeFiles<E extends { node: string; file: string }>(fleetRoot: string, entries: E[], f: NodeFieldEdit<E>): Recorded[] {
  const tree = new NoFollowTree(fleetRoot);
  const byFile = new Map<string, E[]>();
  for (const e of entries) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
  const out: Recorded[] = [];
  for (const [file, list] of byFile) {
    if (file.split('/').some((s) => s === '..' || s === '') || path.isAbsolute(file)) throw new EdgectlError('EDGECTL_FLEET_INVALID', `${file}: not a path inside the fleet`);
    let text: string;
    try {
      const bytes = tree.read(file, MAX_FILE_BYTES);
      if (!bytes) throw new Error('it is gone');
      text = bytes.toString('utf8');
    } catch (e) {
      throw new EdgectlError('EDGECTL_FLEET_INVALID', `cannot record ${f.what} in ${file}: ${(e as Error).message}`);
    }
    for (const e of list) {
      const r = f.edit(text, e);
      if ('error' in r) throw new EdgectlError('EDGECTL_FLEET_INVALID', `cannot record ${e.node}'s ${f.one} in ${file}: ${r.error}`, { hint: `add it by hand under the node's spec: ${f.byHand(e)}` });
      text = r.text;
    }
    const docs = Y().parseAllDocuments(text, YAML_OPTIONS) as Document[];
    const bad = list.find((e) => !f.readsBack(docs.find((x) => x.get('kind') === 'Node' && x.getIn(['metadata', 'name']) === e.node), e));
    if (bad) throw new EdgectlError('EDGECTL_FLEET_INVALID', `cannot record ${bad.node}'s ${f.one} in ${file}: the edited file does not read back`, { hint: `add it by hand: ${f.byHand(bad)}` });
    writeReplacing(path.join(fleetRoot, file), text);
    for (const { node } of list) out.push({ node, file });
  }
  return out;
}

function writeReplacing(target: string, text: string): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, target);
}
