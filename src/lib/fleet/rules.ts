import type { FleetModel, NodeResource, AppResource, TenantResource, Resource } from './model.js';
import { locate } from './parse.js';
import { closest, formatPath, type PathSeg, type Problem } from './problems.js';
import { matchesSelector } from './selector.js';

/**
 * Cross-reference rules: stage two of validation, on documents that each passed their schema.
 * Each rule is a small function adding problems; none throws.
 */
type Ctx = {
  m: FleetModel;
  nodes: Map<string, NodeResource>;
  tenants: Map<string, TenantResource>;
  out: Problem[];
};

function report(ctx: Ctx, r: Resource<any, any>, path: PathSeg[], rule: string, message: string, hint?: string, severity: 'error' | 'warning' = 'error'): void {
  const pos = locate(r.source, path);
  ctx.out.push({ severity, rule, file: r.source.file, ...pos, path: formatPath(path), message, hint });
}

function viaRules(ctx: Ctx): void {
  for (const n of ctx.m.nodes) {
    const via = n.spec.via ?? [];
    const seen = new Set<string>();
    via.forEach((r, i) => {
      const path = ['spec', 'via', i];
      if (r === n.name) return report(ctx, n, path, 'via-cycle', `node lists itself in via`);
      if (seen.has(r)) return report(ctx, n, path, 'via-cycle', `relay "${r}" appears twice in via, which would loop`);
      seen.add(r);
      const relay = ctx.nodes.get(r);
      if (!relay) return report(ctx, n, path, 'via-unknown-node', `unknown node "${r}"`, hintName(r, ctx.nodes.keys()));
      if (relay.spec.role !== 'relay') report(ctx, n, path, 'via-not-relay', `node "${r}" is a ${relay.spec.role}, not a relay`, 'Only nodes with role: relay can forward connections.');
    });
    if (n.spec.tunnel === 'reverse' && via.length === 0) {
      report(ctx, n, ['spec', 'tunnel'], 'reverse-without-relay', 'a reverse tunnel needs a relay to dial out to', 'Add `via: [<relay>]`: the node keeps a tunnel open to the last relay in the list.');
    }
    if (n.spec.tunnel === 'reverse' && n.spec.tunnelPort === undefined) {
      report(ctx, n, ['spec', 'tunnel'], 'reverse-without-port', 'a reverse tunnel needs spec.tunnelPort: the port on the last relay\'s 127.0.0.1 where the tunnel lands', 'The node runs `ssh -N -R 127.0.0.1:<tunnelPort>:127.0.0.1:<its sshd port> <relay>`; see docs/transport.md.');
    }
    if (n.spec.tunnelPort !== undefined && n.spec.tunnel !== 'reverse') {
      report(ctx, n, ['spec', 'tunnelPort'], 'tunnel-port-without-tunnel', 'spec.tunnelPort only applies with tunnel: reverse');
    }
  }
  // Cycles across nodes: A via [B] and B via [A], or longer loops.
  const state = new Map<string, 1 | 2>();
  const reported = new Set<string>();
  const visit = (name: string, stack: string[]): void => {
    state.set(name, 1);
    const n = ctx.nodes.get(name)!;
    (n.spec.via ?? []).forEach((r, i) => {
      if (r === name || !ctx.nodes.has(r)) return;
      if (state.get(r) === 1) {
        const loop = [...stack.slice(stack.indexOf(r)), name, r];
        if (!reported.has(name)) {
          reported.add(name);
          report(ctx, n, ['spec', 'via', i], 'via-cycle', `relays form a cycle: ${loop.join(' → ')}`);
        }
      } else if (!state.has(r)) {
        visit(r, [...stack, name]);
      }
    });
    state.set(name, 2);
  };
  for (const n of ctx.m.nodes) if (!state.has(n.name)) visit(n.name, []);
}

function hintName(name: string, candidates: Iterable<string>): string | undefined {
  const near = closest(name, candidates);
  return near ? `did you mean \`${near}\`?` : undefined;
}

function appRules(ctx: Ctx): void {
  const domainOwner = new Map<string, AppResource>();
  const edges = ctx.m.nodes.filter((n) => n.spec.role === 'edge');
  for (const a of ctx.m.apps) {
    const s = a.spec;
    if (!ctx.tenants.has(s.tenant)) report(ctx, a, ['spec', 'tenant'], 'unknown-tenant', `unknown tenant "${s.tenant}"`, hintName(s.tenant, ctx.tenants.keys()));
    s.domains.forEach((d, i) => {
      const prev = domainOwner.get(d);
      if (!prev) return void domainOwner.set(d, a);
      if (prev.spec.tenant !== s.tenant) report(ctx, a, ['spec', 'domains', i], 'domain-conflict', `domain "${d}" is also claimed by tenant "${prev.spec.tenant}" (app "${prev.name}", ${prev.source.file}:${prev.source.line})`);
      else report(ctx, a, ['spec', 'domains', i], 'domain-conflict', `domain "${d}" is already served by app "${prev.name}" (${prev.source.file}:${prev.source.line})`);
    });
    const need = (field: string, types: string[]) => {
      if (types.includes(s.type) && !(s as any)[field]) report(ctx, a, ['spec'], 'missing-field', `a ${s.type} app needs spec.${field}`);
      if (!types.includes(s.type) && (s as any)[field]) report(ctx, a, ['spec', field], 'field-not-for-type', `spec.${field} does not apply to a ${s.type} app (only ${types.join(', ')})`);
    };
    need('upstream', ['proxy', 'api']);
    need('static', ['static']);
    need('routes', ['api']);
    if (s.fastcgi && s.type !== 'fastcgi') report(ctx, a, ['spec', 'fastcgi'], 'field-not-for-type', `spec.fastcgi does not apply to a ${s.type} app`);
    if (s.cache && s.type !== 'proxy') report(ctx, a, ['spec', 'cache'], 'field-not-for-type', `spec.cache applies to proxy apps only, not ${s.type}`);
    const p = s.placement;
    const eligible = edges.filter((n) => s.type !== 'api' || n.spec.kong === true);
    if (p?.nodes) {
      p.nodes.forEach((nn, i) => {
        const node = ctx.nodes.get(nn);
        if (!node) report(ctx, a, ['spec', 'placement', 'nodes', i], 'placement-unknown-node', `unknown node "${nn}"`, hintName(nn, ctx.nodes.keys()));
        else if (node.spec.role !== 'edge') report(ctx, a, ['spec', 'placement', 'nodes', i], 'placement-not-edge', `node "${nn}" is a ${node.spec.role}; apps run on edge nodes`);
        else if (s.type === 'api' && node.spec.kong !== true) report(ctx, a, ['spec', 'placement', 'nodes', i], 'placement-no-kong', `node "${nn}" does not run Kong (kong: true), which an api app needs`);
      });
      if (p.selector || p.replicas) report(ctx, a, ['spec', 'placement', 'nodes'], 'placement-conflict', 'placement.nodes cannot be combined with selector or replicas');
      continue;
    }
    const matching = eligible.filter((n) => matchesSelector(n.labels, p?.selector));
    const replicas = p?.replicas;
    if (replicas !== undefined && matching.length < replicas) {
      report(ctx, a, ['spec', 'placement', 'replicas'], 'placement-too-few-nodes', `placement asks for ${replicas} replicas but only ${matching.length} ${s.type === 'api' ? 'Kong ' : ''}edge node(s) match the selector`, 'Lower replicas or widen the selector.');
    } else if (matching.length === 0) {
      report(ctx, a, p ? ['spec', 'placement'] : ['spec'], 'placement-empty', `app is placed on no node: no ${s.type === 'api' ? 'edge node with kong: true' : 'edge node'} matches`, undefined, 'warning');
    }
    if (p?.selector) {
      const keys = new Set(edges.flatMap((n) => Object.keys(n.labels)));
      for (const k of Object.keys(p.selector)) if (!keys.has(k)) report(ctx, a, ['spec', 'placement', 'selector', k], 'selector-unknown-label', `no edge node has the label "${k}"`, hintName(k, keys), 'warning');
    }
    if (p?.spreadBy && !edges.some((n) => p.spreadBy! in n.labels)) report(ctx, a, ['spec', 'placement', 'spreadBy'], 'selector-unknown-label', `no edge node has the label "${p.spreadBy}"`, hintName(p.spreadBy, new Set(edges.flatMap((n) => Object.keys(n.labels)))), 'warning');
  }
}

function tenantRules(ctx: Ctx): void {
  const tokenOwner = new Map<string, TenantResource>();
  for (const t of ctx.m.tenants) {
    (t.spec.uplink?.tokens ?? []).forEach((tok, i) => {
      const prev = tokenOwner.get(tok.sha256);
      if (prev) report(ctx, t, ['spec', 'uplink', 'tokens', i, 'sha256'], 'token-reused', `this token hash is already used by tenant "${prev.name}"`, 'Each device token must identify exactly one tenant.');
      else tokenOwner.set(tok.sha256, t);
    });
    const names = new Set<string>();
    (t.spec.uplink?.tokens ?? []).forEach((tok, i) => {
      if (names.has(tok.name)) report(ctx, t, ['spec', 'uplink', 'tokens', i, 'name'], 'duplicate-name', `token name "${tok.name}" is used twice`);
      names.add(tok.name);
    });
  }
  const withApps = new Set(ctx.m.apps.map((a) => a.spec.tenant));
  for (const t of ctx.m.tenants) if (!withApps.has(t.name)) report(ctx, t, ['metadata', 'name'], 'tenant-unused', `tenant "${t.name}" has no apps`, undefined, 'warning');
}

function nodeRules(ctx: Ctx): void {
  const endpoints = new Map<string, NodeResource>();
  for (const n of ctx.m.nodes) {
    const root = n.spec.root ?? ctx.m.fleet.spec.defaults?.root ?? '';
    const key = `${n.spec.address}|${n.spec.ssh?.port ?? ctx.m.fleet.spec.defaults?.ssh?.port ?? 22}|${root}`;
    const prev = endpoints.get(key);
    if (prev) report(ctx, n, ['spec', 'address'], 'node-duplicate-endpoint', `node "${prev.name}" has the same address, ssh port and root: both would write the same releases`);
    else endpoints.set(key, n);
  }
}

export function crossRules(m: FleetModel): Problem[] {
  const ctx: Ctx = { m, nodes: new Map(m.nodes.map((n) => [n.name, n])), tenants: new Map(m.tenants.map((t) => [t.name, t])), out: [] };
  viaRules(ctx);
  appRules(ctx);
  tenantRules(ctx);
  nodeRules(ctx);
  return ctx.out;
}
