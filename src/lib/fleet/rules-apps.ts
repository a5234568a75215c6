import type { AppResource, NodeResource } from './model.js';
import { matchesSelector } from './selector.js';
import { aRole, report, unknown, type RuleContext } from './rule-context.js';
import { didYouMean } from './problems.js';
import { isAppRelativeProgram } from './fastcgi-command.js';

/**
 * Edge nodes indexed by label, so that counting the nodes a selector matches costs the size of
 * the smallest matching label set rather than the whole fleet: 2,000 apps × 10,000 nodes must
 * stay linear. Results are cached per (kong only, selector).
 */
class EdgeIndex {
  private readonly byLabel = new Map<string, NodeResource[]>();
  private readonly cache = new Map<string, number>();
  readonly labelKeys = new Set<string>();

  constructor(private readonly edges: NodeResource[]) {
    for (const n of edges) {
      for (const k in n.labels) {
        this.labelKeys.add(k);
        const key = `${k}=${n.labels[k]}`;
        const list = this.byLabel.get(key);
        if (list) list.push(n);
        else this.byLabel.set(key, [n]);
      }
    }
  }

  count(selector: Record<string, string> | undefined, kongOnly: boolean): number {
    const sel = selector ?? {};
    const keys = Object.keys(sel).sort();
    const cacheKey = `${kongOnly}|${keys.map((k) => `${k}=${sel[k]}`).join(',')}`;
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) return hit;
    let smallest: NodeResource[] = this.edges;
    for (const k of keys) {
      const list = this.byLabel.get(`${k}=${sel[k]}`) ?? [];
      if (list.length < smallest.length) smallest = list;
    }
    let n = 0;
    for (const node of smallest) if ((!kongOnly || node.spec.kong === true) && matchesSelector(node.labels, sel)) n++;
    this.cache.set(cacheKey, n);
    return n;
  }
}

const NEEDS: [field: string, types: string[]][] = [['upstream', ['proxy', 'api']], ['static', ['static']], ['routes', ['api']]];

function typeFields(ctx: RuleContext, a: AppResource): void {
  const s = a.spec as Record<string, unknown> & AppResource['spec'];
  for (const [field, types] of NEEDS) {
    if (types.includes(s.type) && !s[field]) report(ctx, a, ['spec', 'type'], 'missing-field', `${aRole(s.type)} app needs spec.${field}`);
    if (!types.includes(s.type) && s[field]) report(ctx, a, ['spec', field], 'field-not-for-type', `spec.${field} does not apply to ${aRole(s.type)} app (only ${types.join(', ')})`);
  }
  if (s.fastcgi && s.type !== 'fastcgi') report(ctx, a, ['spec', 'fastcgi'], 'field-not-for-type', `spec.fastcgi does not apply to ${aRole(s.type)} app`);
  if (s.type === 'fastcgi') fastcgiRules(ctx, a);
  if (s.cache && s.type !== 'proxy') report(ctx, a, ['spec', 'cache'], 'field-not-for-type', `spec.cache applies to proxy apps only, not ${s.type}`);
}

/**
 * A FastCGI app runs only with a command: without one nothing serves its socket and nginx
 * answers 502 (kept valid for fleets written before the field existed). A program given as a
 * path runs from the app's own files, so the app must ship some.
 */
function fastcgiRules(ctx: RuleContext, a: AppResource): void {
  const f = a.spec.fastcgi;
  if (!f?.command) {
    report(ctx, a, f ? ['spec', 'fastcgi'] : ['spec', 'type'], 'fastcgi-no-command', 'FastCGI app without spec.fastcgi.command: the agent starts nothing for it and nginx answers 502', 'Add the program to run, e.g. `fastcgi: { command: [php-cgi] }`.', 'warning');
    return;
  }
  if (isAppRelativeProgram(f.command[0]) && !f.path) {
    report(ctx, a, ['spec', 'fastcgi', 'command', 0], 'fastcgi-command-not-shipped', `"${f.command[0]}" is a path inside the app's directory, but the app ships no files (no spec.fastcgi.path)`, 'Set spec.fastcgi.path to the directory holding the program, or name a program on the node\'s PATH.');
  }
}

function placementRules(ctx: RuleContext, a: AppResource, idx: EdgeIndex): void {
  const s = a.spec;
  const p = s.placement;
  const api = s.type === 'api';
  if (p?.nodes) {
    p.nodes.forEach((nn, i) => {
      const path = ['spec', 'placement', 'nodes', i];
      const node = ctx.nodes.get(nn);
      if (!node && !unknown(ctx, 'Node', nn)) return;
      if (!node) report(ctx, a, path, 'placement-unknown-node', `unknown node "${nn}"`, didYouMean(nn, ctx.nodes.keys()));
      else if (node.spec.role !== 'edge') report(ctx, a, path, 'placement-not-edge', `node "${nn}" is ${aRole(node.spec.role)}; apps run on edge nodes`);
      else if (api && node.spec.kong !== true) report(ctx, a, path, 'placement-no-kong', `node "${nn}" does not run Kong (kong: true), which an api app needs`);
    });
    if (p.selector || p.replicas) report(ctx, a, ['spec', 'placement', 'nodes'], 'placement-conflict', 'placement.nodes cannot be combined with selector or replicas');
    return;
  }
  if (ctx.m.partial.has('Node')) return; // counts over a partial list of nodes would mislead
  const matching = idx.count(p?.selector, api);
  const replicas = p?.replicas;
  if (replicas !== undefined && matching < replicas) {
    report(ctx, a, ['spec', 'placement', 'replicas'], 'placement-too-few-nodes', `placement asks for ${replicas} replicas but only ${matching} ${api ? 'Kong ' : ''}edge node(s) match the selector`, 'Lower replicas or widen the selector.');
  } else if (matching === 0) {
    report(ctx, a, p ? ['spec', 'placement'] : ['spec'], 'placement-empty', `app is placed on no node: no ${api ? 'edge node with kong: true' : 'edge node'} matches`, undefined, 'warning');
  }
  if (p?.selector) {
    for (const k of Object.keys(p.selector)) {
      if (!idx.labelKeys.has(k)) report(ctx, a, ['spec', 'placement', 'selector', k], 'selector-unknown-label', `no edge node has the label "${k}"`, didYouMean(k, idx.labelKeys), 'warning');
    }
  }
  if (p?.spreadBy && !idx.labelKeys.has(p.spreadBy)) {
    report(ctx, a, ['spec', 'placement', 'spreadBy'], 'selector-unknown-label', `no edge node has the label "${p.spreadBy}"`, didYouMean(p.spreadBy, idx.labelKeys), 'warning');
  }
}

/** Tenants exist, domains are claimed once, fields fit the app type, placement can be met. */
export function appRules(ctx: RuleContext): void {
  const domainOwner = new Map<string, AppResource>();
  const idx = new EdgeIndex(ctx.m.nodes.filter((n) => n.spec.role === 'edge'));
  for (const a of ctx.m.apps) {
    const s = a.spec;
    if (unknown(ctx, 'Tenant', s.tenant)) report(ctx, a, ['spec', 'tenant'], 'unknown-tenant', `unknown tenant "${s.tenant}"`, didYouMean(s.tenant, ctx.tenants.keys()));
    s.domains.forEach((d, i) => {
      const prev = domainOwner.get(d);
      if (!prev) return void domainOwner.set(d, a);
      if (prev === a) return report(ctx, a, ['spec', 'domains', i], 'domain-conflict', `domain "${d}" is listed twice`);
      if (prev.spec.tenant !== s.tenant) report(ctx, a, ['spec', 'domains', i], 'domain-conflict', `domain "${d}" is also claimed by tenant "${prev.spec.tenant}" (app "${prev.name}", ${prev.source.file}:${prev.source.line})`);
      else report(ctx, a, ['spec', 'domains', i], 'domain-conflict', `domain "${d}" is already served by app "${prev.name}" (${prev.source.file}:${prev.source.line})`);
    });
    typeFields(ctx, a);
    placementRules(ctx, a, idx);
  }
}
