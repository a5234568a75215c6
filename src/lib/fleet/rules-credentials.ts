import type { NodeResource } from './model.js';
import { report, type RuleContext } from './rule-context.js';

/**
 * A node's forwarding credential identifies that node alone: its hash is on no other node and is
 * no tenant's device token (a device holding it could otherwise forward as the node, and a node
 * could post as a tenant).
 */
export function credentialRules(ctx: RuleContext): void {
  const tokens = new Map<string, string>();
  for (const t of ctx.m.tenants) for (const tok of t.spec.uplink?.tokens ?? []) tokens.set(tok.sha256, t.name);
  const owner = new Map<string, NodeResource>();
  for (const n of ctx.m.nodes) {
    const h = n.spec.credential?.sha256;
    if (!h) continue;
    const path = ['spec', 'credential', 'sha256'];
    const prev = owner.get(h);
    if (prev) report(ctx, n, path, 'credential-reused', `this credential hash is already node "${prev.name}"'s`, 'Each node has its own credential: generate one on the node and record its sha256.');
    else owner.set(h, n);
    const tenant = tokens.get(h);
    if (tenant) report(ctx, n, path, 'credential-reused', `this credential hash is a device token of tenant "${tenant}"`, 'A node\'s credential must not be a device token: whoever holds one could act as the other.');
  }
}
