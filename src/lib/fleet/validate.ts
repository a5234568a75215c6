import { KINDS, SPEC_SCHEMAS, metadataSchema, type Kind } from './schema.js';
import { parseFile, locate, type ParsedDoc } from './parse.js';
import { didYouMean, formatPath, sortProblems, unknownFieldHint, type Problem } from './problems.js';
import { zodProblems } from './zod-problems.js';
import { crossRules } from './rules.js';
import { fleetNginxFiles } from './templates.js';
import { fileRules } from './rules-files.js';
import type { AppResource, FleetModel, FleetResource, NodeResource, Resource, TenantResource } from './model.js';
import type { FleetSource, SourceFile } from './source.js';

export const API_VERSION = 'edgectl/v1';
const TOP_KEYS = ['apiVersion', 'kind', 'metadata', 'spec'];
/**
 * Problems reported per file at most. Beyond them the rest of the file is not checked: a hostile
 * file of 4 MiB can hold a million problems, and nobody reads past the first screens of them.
 */
export const MAX_FILE_PROBLEMS = 1000;

export interface ValidationResult {
  /** Present when there are no errors (warnings allowed). */
  model?: FleetModel;
  problems: Problem[];
  errors: number;
  warnings: number;
  /** File texts by path, so reports can quote the offending line. */
  texts: Map<string, string>;
  counts: { files: number; documents: number; fleets: number; tenants: number; nodes: number; apps: number };
  /** The fleet directory (absolute): file paths in problems are relative to it. */
  root: string;
  commit?: string;
  dirty: boolean;
  from: FleetSource['from'];
  rev?: string;
}

function docProblem(d: ParsedDoc, path: (string | number)[], rule: string, message: string, hint?: string, onKey = false): Problem {
  return { severity: 'error', rule, file: d.file, ...locate(d, path, onKey), path: formatPath(path), message, hint };
}

/** Stage one for one document: envelope, metadata and the spec schema of its kind. */
function checkDocument(d: ParsedDoc, out: Problem[]): Resource<Kind, unknown> | undefined {
  const v = d.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    out.push(docProblem(d, [], 'not-a-mapping', 'a fleet document must be a mapping with apiVersion, kind, metadata and spec'));
    return undefined;
  }
  const o = v as Record<string, unknown>;
  let ok = true;
  for (const k of Object.keys(o)) {
    if (out.length >= MAX_FILE_PROBLEMS) break;
    if (!TOP_KEYS.includes(k)) {
      out.push(docProblem(d, [k], 'unknown-field', `unknown field "${k}"`, unknownFieldHint(k, TOP_KEYS), true));
      ok = false;
    }
  }
  if (o.apiVersion !== API_VERSION) {
    out.push(docProblem(d, ['apiVersion'], o.apiVersion === undefined ? 'missing-field' : 'wrong-api-version',
      o.apiVersion === undefined ? 'apiVersion is missing' : `apiVersion ${JSON.stringify(o.apiVersion)} is not supported`, `use \`apiVersion: ${API_VERSION}\``));
    ok = false;
  }
  const kind = o.kind;
  if (typeof kind !== 'string' || !(KINDS as string[]).includes(kind)) {
    const hint = (typeof kind === 'string' ? didYouMean(kind, KINDS) : undefined) ?? `kinds are ${KINDS.join(', ')}`;
    out.push(docProblem(d, ['kind'], kind === undefined ? 'missing-field' : 'unknown-kind',
      kind === undefined ? 'kind is missing' : `unknown kind ${JSON.stringify(kind)}`, hint));
    return undefined;
  }
  const meta = metadataSchema.safeParse(o.metadata);
  if (!meta.success) {
    zodProblems(d, ['metadata'], metadataSchema, meta.error, out, MAX_FILE_PROBLEMS);
    ok = false;
  }
  const schema = SPEC_SCHEMAS[kind as Kind];
  const spec = schema.safeParse(o.spec ?? (kind === 'Tenant' ? {} : undefined));
  if (!spec.success) {
    if (o.spec === undefined) out.push(docProblem(d, [], 'missing-field', `${kind} needs a spec`));
    else zodProblems(d, ['spec'], schema, spec.error, out, MAX_FILE_PROBLEMS);
    ok = false;
  }
  if (!ok || !meta.success || !spec.success) return undefined;
  return { kind: kind as Kind, name: meta.data.name, labels: meta.data.labels ?? {}, spec: spec.data, source: d };
}

/** Remembers an invalid document's kind (and name, when readable) for the cross-reference rules. */
function noteInvalid(v: unknown, invalid: Set<string>, partial: Set<string>): void {
  const o = (v && typeof v === 'object' ? v : {}) as { kind?: unknown; metadata?: { name?: unknown } };
  if (typeof o.kind !== 'string') {
    // A document without a readable kind could have been anything.
    for (const k of KINDS) partial.add(k);
    return;
  }
  partial.add(o.kind);
  const name = o.metadata && typeof o.metadata === 'object' ? o.metadata.name : undefined;
  if (typeof name === 'string') invalid.add(`${o.kind}/${name}`);
}

/** Stage one for one file: parse it and check each document on its own. */
export interface FileCheck {
  path: string;
  /** The decoded text, when the file could be decoded. */
  text?: string;
  problems: Problem[];
  docs: { doc: ParsedDoc; resource?: Resource<Kind, unknown> }[];
  /** Documents that could not be parsed (ParsedFile.broken); a file not read at all is one of unknown kind. */
  broken: { kind?: string; name?: string }[];
}

export function checkFile(f: SourceFile): FileCheck {
  const problems: Problem[] = [];
  const parsed = parseFile(f, problems);
  const docs: FileCheck['docs'] = [];
  let stop: ParsedDoc | undefined;
  for (const doc of parsed?.docs ?? []) {
    // Documents not checked count as invalid: references to them are not reported as unknown.
    if (problems.length >= MAX_FILE_PROBLEMS) stop ??= doc;
    docs.push({ doc, resource: stop ? undefined : checkDocument(doc, problems) });
  }
  if (problems.length >= MAX_FILE_PROBLEMS) {
    problems.length = MAX_FILE_PROBLEMS;
    const where = stop ? { line: stop.line, column: stop.column } : { line: problems[problems.length - 1].line, column: 1 };
    problems.push({ severity: 'error', rule: 'too-many-problems', file: f.path, ...where, path: '', message: `${MAX_FILE_PROBLEMS} problems found in this file; the rest of it was not checked`, hint: 'Fix the problems shown and validate again.' });
  }
  return { path: f.path, text: parsed?.text, problems, docs, broken: parsed ? parsed.broken : [{}] };
}

/** Validates a fleet read from disk or git. Pure apart from the source it is given. */
export function validateFleet(src: FleetSource): ValidationResult {
  return assemble(src, src.files.map(checkFile));
}

/** Stage two: names, the one Fleet, cross-references; then counts and ordering. */
export function assemble(src: FleetSource, checks: FileCheck[]): ValidationResult {
  const problems: Problem[] = [];
  const texts = new Map<string, string>();
  const byKind: Record<Kind, Resource<Kind, unknown>[]> = { Fleet: [], Tenant: [], Node: [], App: [] };
  let documents = 0;
  let fleetDocs = 0;
  const invalid = new Set<string>();
  const partial = new Set<string>();
  for (const c of checks) {
    for (const p of c.problems) problems.push(p);
    // What a file that failed to parse defined: not called unknown, not counted over (no "tenant has no apps").
    for (const b of c.broken) noteInvalid({ kind: b.kind, metadata: { name: b.name } }, invalid, partial);
    if (c.text === undefined) continue;
    texts.set(c.path, c.text);
    for (const { doc, resource } of c.docs) {
      documents++;
      if ((doc.value as { kind?: unknown } | null)?.kind === 'Fleet') fleetDocs++;
      if (resource) byKind[resource.kind].push(resource);
      else noteInvalid(doc.value, invalid, partial);
    }
  }
  for (const k of KINDS) byKind[k].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const fleets = byKind.Fleet;
  const counts = { files: src.files.length, documents, fleets: fleetDocs, tenants: 0, nodes: 0, apps: 0 };

  // Duplicate names within a kind (the lists are sorted, so duplicates are neighbours).
  for (const k of KINDS) {
    const list = byKind[k];
    let first = list[0];
    for (let i = 1; i < list.length; i++) {
      const r = list[i];
      if (r.name !== first.name) {
        first = r;
        continue;
      }
      problems.push(docProblem(r.source, ['metadata', 'name'], 'duplicate-name', `${k} "${r.name}" is already defined at ${first.source.file}:${first.source.line}`));
    }
  }
  // Documents with `kind: Fleet` count even when invalid: their own errors are reported already.
  if (fleetDocs === 0) {
    problems.push({ severity: 'error', rule: 'missing-fleet', file: src.files[0]?.path ?? '.', line: 1, column: 1, path: '', message: 'no Fleet document found: a fleet repo needs exactly one `kind: Fleet`', hint: src.files.length ? 'Add a document with `kind: Fleet` (see docs/fleet-format.md).' : 'The directory has no *.yaml files; start one with `edgectl init`.' });
  }
  for (const extra of fleets.slice(1)) {
    problems.push(docProblem(extra.source, ['kind'], 'duplicate-fleet', `a second Fleet document ("${extra.name}"); the first is at ${fleets[0].source.file}:${fleets[0].source.line}`, 'A fleet repo has exactly one Fleet.'));
  }

  const unique = <T extends Resource<Kind, unknown>>(list: T[]) => list.filter((r, i) => i === 0 || r.name !== list[i - 1].name);
  const fleet = fleets[0] as FleetResource | undefined;
  const input = { defaults: fleet?.spec.defaults, policy: fleet?.spec.policy, recipients: fleet?.spec.secrets?.recipients, acme: fleet?.spec.acme !== undefined, hopTls: fleet?.spec.hops?.tls !== undefined, hubUrl: fleet?.spec.hub.url, secretFiles: src.secretFiles && new Map(src.secretFiles.map((f) => [f.path, f.bytes])), files: src.files.map((f) => f.path), tenants: unique(byKind.Tenant) as TenantResource[], nodes: unique(byKind.Node) as NodeResource[], apps: unique(byKind.App) as AppResource[], invalid, partial };
  counts.tenants = input.tenants.length;
  counts.nodes = input.nodes.length;
  counts.apps = input.apps.length;
  // Cross-references are checked even when some documents are invalid: the valid ones still get
  // their reports in the same run, and references to an invalid document are not called unknown.
  problems.push(...crossRules(input));
  // The fleet's nginx snippets and mime.types: parsed and allow-listed like generated config.
  const nginxFiles = fleetNginxFiles(src.templates ?? []);
  problems.push(...nginxFiles.problems);
  for (const [file, text] of nginxFiles.texts) texts.set(file, text);
  problems.push(...fileRules(src, input.apps));
  const model: FleetModel | undefined = fleet
    ? { name: fleet.name, fleet, tenants: input.tenants, nodes: input.nodes, apps: input.apps, commit: src.commit, dirty: src.dirty }
    : undefined;
  sortProblems(problems);
  const errors = problems.filter((p) => p.severity === 'error').length;
  return {
    model: errors === 0 ? model : undefined,
    problems,
    errors,
    warnings: problems.length - errors,
    texts,
    counts,
    root: src.root,
    commit: src.commit,
    dirty: src.dirty,
    from: src.from,
    rev: src.rev,
  };
}
