import type { NodeResource } from './model.js';
import { report, type RuleContext } from './rule-context.js';

/**
 * A tunnel key opens one node's forward on its relay: it belongs to a reverse-tunnelled node, and
 * to one node only (two nodes sharing it could each take the other's port: the relay tells keys
 * apart, not nodes).
 */
export function tunnelKeyRules(ctx: RuleContext): void {
  const owner = new Map<string, NodeResource>();
  for (const n of ctx.m.nodes) {
    const key = n.spec.tunnelKey;
    if (key === undefined) continue;
    const path = ['spec', 'tunnelKey'];
    if (n.spec.tunnel !== 'reverse') report(ctx, n, path, 'tunnel-key-without-tunnel', 'spec.tunnelKey only applies with tunnel: reverse', 'Remove it, or set `tunnel: reverse` and `tunnelPort`.');
    const blob = key.split(' ').slice(0, 2).join(' ');
    const prev = owner.get(blob);
    if (prev) report(ctx, n, path, 'tunnel-key-reused', `this tunnel key is already node "${prev.name}"'s`, 'Each node has its own tunnel key, born on the node: a shared key could open the other node\'s port.');
    else owner.set(blob, n);
  }
}
