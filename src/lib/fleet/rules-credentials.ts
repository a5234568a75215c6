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
  const hasHub = ctx.m.nodes.some((n) => n.spec.role === 'core');
  for (const n of ctx.m.nodes) {
    const h = n.spec.credential?.sha256;
    if (!h) {
      // Fail closed: render leaves such a node out of its next hop's accept list.
      // A fleet with no hub and no relay above the node has nowhere to forward to: nothing to warn of.
      if (n.spec.role !== 'core' && (n.spec.via?.length || hasHub)) {
        const hop = n.spec.via?.length ? `relay ${n.spec.via[n.spec.via.length - 1]}` : 'the hub';
        report(ctx, n, ['spec'], 'credential-missing', `no credential recorded: ${hop} refuses this node's forwards (device data and heartbeats stay on the node)`, '`edgectl bootstrap` creates the credential on the node and records its sha256 here.', 'warning');
      }
      continue;
    }
    const path = ['spec', 'credential', 'sha256'];
    const prev = owner.get(h);
    if (prev) report(ctx, n, path, 'credential-reused', `this credential hash is already node "${prev.name}"'s`, 'Each node has its own credential: generate one on the node and record its sha256.');
    else owner.set(h, n);
    const tenant = tokens.get(h);
    if (tenant) report(ctx, n, path, 'credential-reused', `this credential hash is a device token of tenant "${tenant}"`, 'A node\'s credential must not be a device token: whoever holds one could act as the other.');
  }
}
