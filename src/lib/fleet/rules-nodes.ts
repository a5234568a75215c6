import type { NodeResource } from './model.js';
import { aRole, report, unknown, type RuleContext } from './rule-context.js';
import { didYouMean } from './problems.js';

/** via: known relays, no repeats, no loops; reverse tunnels need a relay and a free port on it. */
export function viaRules(ctx: RuleContext): void {
  const tunnelPorts = new Map<string, NodeResource>();
  for (const n of ctx.m.nodes) {
    const via = n.spec.via ?? [];
    const seen = new Set<string>();
    via.forEach((r, i) => {
      const path = ['spec', 'via', i];
      if (r === n.name) return report(ctx, n, path, 'via-cycle', 'node lists itself in via');
      if (seen.has(r)) return report(ctx, n, path, 'via-cycle', `relay "${r}" appears twice in via, which would loop`);
      seen.add(r);
      const relay = ctx.nodes.get(r);
      if (!relay && !unknown(ctx, 'Node', r)) return;
      if (!relay) return report(ctx, n, path, 'via-unknown-node', `unknown node "${r}"`, didYouMean(r, ctx.nodes.keys()));
      if (relay.spec.role !== 'relay') report(ctx, n, path, 'via-not-relay', `node "${r}" is ${aRole(relay.spec.role)}, not a relay`, 'Only nodes with role: relay can forward connections.');
    });
    if (n.spec.tunnel === 'reverse' && via.length === 0) {
      report(ctx, n, ['spec', 'tunnel'], 'reverse-without-relay', 'a reverse tunnel needs a relay to dial out to', 'Add `via: [<relay>]`: the node keeps a tunnel open to the last relay in the list.');
    }
    if (n.spec.tunnel === 'reverse' && n.spec.tunnelPort === undefined) {
      report(ctx, n, ['spec', 'tunnel'], 'reverse-without-port', 'a reverse tunnel needs spec.tunnelPort: the port on the last relay\'s 127.0.0.1 where the tunnel lands', 'The node\'s agent asks the relay to listen on 127.0.0.1:<tunnelPort> and hands what arrives there to its own sshd; see docs/transport.md.');
    }
    if (n.spec.tunnelPort !== undefined && n.spec.tunnel !== 'reverse') {
      report(ctx, n, ['spec', 'tunnelPort'], 'tunnel-port-without-tunnel', 'spec.tunnelPort only applies with tunnel: reverse');
    }
    if (n.spec.tunnel === 'reverse' && n.spec.tunnelPort !== undefined && via.length > 0) {
      const key = `${via[via.length - 1]}:${n.spec.tunnelPort}`;
      const prev = tunnelPorts.get(key);
      if (prev) report(ctx, n, ['spec', 'tunnelPort'], 'tunnel-port-conflict', `node "${prev.name}" already lands its reverse tunnel on port ${n.spec.tunnelPort} of relay "${via[via.length - 1]}"`, 'Give each reverse-tunnelled node behind a relay its own tunnelPort.');
      else tunnelPorts.set(key, n);
    }
  }
  viaCycles(ctx);
}

/**
 * Loops across nodes (A via [B], B via [A], or longer). Iterative depth-first search: a
 * hostile fleet with a chain of thousands of relays must not overflow the stack.
 */
function viaCycles(ctx: RuleContext): void {
  const state = new Map<string, 1 | 2>();
  for (const start of ctx.m.nodes) {
    if (state.has(start.name)) continue;
    const stack: { node: NodeResource; i: number }[] = [{ node: start, i: 0 }];
    const onPath: string[] = [start.name];
    state.set(start.name, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const via = top.node.spec.via ?? [];
      if (top.i >= via.length) {
        state.set(top.node.name, 2);
        stack.pop();
        onPath.pop();
        continue;
      }
      const i = top.i++;
      const r = via[i];
      const next = ctx.nodes.get(r);
      if (r === top.node.name || !next) continue;
      const st = state.get(r);
      if (st === 1) {
        const loop = [...onPath.slice(onPath.indexOf(r)), r];
        report(ctx, top.node, ['spec', 'via', i], 'via-cycle', `relays form a cycle: ${loop.join(' → ')}`);
      } else if (st === undefined) {
        state.set(r, 1);
        stack.push({ node: next, i: 0 });
        onPath.push(r);
      }
    }
  }
}

/** Two nodes with the same address, ssh port and root would overwrite each other's releases. */
export function endpointRules(ctx: RuleContext): void {
  const endpoints = new Map<string, NodeResource>();
  for (const n of ctx.m.nodes) {
    // The endpoint apply will use, defaults applied the same way.
    const r = ctx.resolved.get(n.name)!;
    const key = `${r.address}|${r.ssh.port}|${r.root}`;
    const prev = endpoints.get(key);
    if (prev) report(ctx, n, ['spec', 'address'], 'node-duplicate-endpoint', `node "${prev.name}" has the same address, ssh port and root: both would write the same releases`);
    else endpoints.set(key, n);
  }
}
