import type { AppResource, NodeResource, ResolvedNode, Resource, TenantResource } from './model.js';
import type { FleetSpec } from './schema.js';
import { locate } from './parse.js';
import { formatPath, type PathSeg, type Problem } from './problems.js';

/** The valid documents of each kind, sorted by name and unique, plus the Fleet's defaults if it is valid. */
export interface RuleInput {
  defaults?: FleetSpec['defaults'];
  /** The operator's exceptions (the Fleet document's spec.policy), if the Fleet is valid. */
  policy?: FleetSpec['policy'];
  nodes: NodeResource[];
  tenants: TenantResource[];
  apps: AppResource[];
  /** The Fleet's spec.secrets.recipients, if the Fleet is valid. */
  recipients?: string[];
  /** Whether the Fleet has spec.hops.tls (relays and core nodes need hop certificates), and its hub URL. */
  hopTls?: boolean;
  hubUrl?: string;
  /** Whether the Fleet has spec.acme (apps with tls.acme need it). */
  acme?: boolean;
  /** Certificates and secrets by path (FleetSource.secretFiles), when the source read them. */
  secretFiles?: Map<string, Buffer>;
  /** Paths of the fleet's documents (relative to the fleet root): app directories may not hold any. */
  files: string[];
  /**
   * "Kind/name" of documents that exist but failed their own checks: a reference to one is not
   * reported as unknown (its own errors are already shown).
   */
  invalid: Set<string>;
  /** Kinds with at least one invalid document: counts over them (placement, unused tenants) are not reliable. */
  partial: Set<string>;
}

/** What every cross-reference rule works from: the documents, name indexes, the resolved nodes, and the problem list. */
export interface RuleContext {
  m: RuleInput;
  nodes: Map<string, NodeResource>;
  /** Every node with the Fleet's defaults applied, as apply will use it (resolveNodes: once per validation). */
  resolved: ReadonlyMap<string, ResolvedNode>;
  tenants: Map<string, TenantResource>;
  out: Problem[];
}

export function report(ctx: RuleContext, r: Resource<any, any>, path: PathSeg[], rule: string, message: string, hint?: string, severity: 'error' | 'warning' = 'error'): void {
  const pos = locate(r.source, path);
  ctx.out.push({ severity, rule, file: r.source.file, ...pos, path: formatPath(path), message, hint });
}

/** True when `name` of `kind` is neither a valid document nor one with its own errors. */
export function unknown(ctx: RuleContext, kind: 'Node' | 'Tenant', name: string): boolean {
  const known = kind === 'Node' ? ctx.nodes.has(name) : ctx.tenants.has(name);
  return !known && !ctx.m.invalid.has(`${kind}/${name}`);
}

/** "an edge", "a relay": roles read as English in messages. */
export function aRole(role: string): string {
  return /^[aeiou]/.test(role) ? `an ${role}` : `a ${role}`;
}
