import type { AppResource, ResolvedNode } from './model.js';
import { report, type RuleContext } from './rule-context.js';
import { splitHostPort } from './ip.js';
import { KONG_RESERVED_PORTS, allowKey, canonicalHost, endpointKey, internalHost, upstreamEndpoint } from './upstream-policy.js';

/** Every address a node of the fleet has (its ssh address, where nginx and the agent listen), by node. */
function nodeAddresses(nodes: ResolvedNode[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of nodes) {
    const agentHost = splitHostPort(r.agent.listen).host;
    for (const a of [r.address, r.http.address, agentHost]) {
      const c = a === undefined ? undefined : canonicalHost(a);
      if (c !== undefined && !out.has(c)) out.set(c, r.name);
    }
  }
  return out;
}

/**
 * Ports that edgectl's own services listen on, refused whatever the host: a node may listen on
 * addresses the fleet does not know (0.0.0.0, a second interface, a container bridge).
 */
function reservedPorts(nodes: ResolvedNode[]): Map<number, string> {
  const out = new Map<number, string>(KONG_RESERVED_PORTS);
  for (const n of nodes) {
    const { port } = splitHostPort(n.agent.listen);
    if (!out.has(port)) out.set(port, `the agent's port (agent.listen of node "${n.name}")`);
    if (!out.has(port + 1)) out.set(port + 1, `the agent's admin port (agent.listen + 1 of node "${n.name}")`);
  }
  return out;
}

/**
 * A tenant's upstream may not be the node itself: no loopback, unspecified or link-local
 * address in any spelling, no name for the node, no address of a fleet node, no port edgectl
 * or Kong listens on. Only the fleet's operator can make an exception, in the Fleet document
 * (spec.policy.allowUpstreams), never an App.
 */
export function upstreamRules(ctx: RuleContext): void {
  const withUpstreams = ctx.m.apps.filter((a) => a.spec.upstream);
  if (withUpstreams.length === 0) return;
  const allowed = new Set((ctx.m.policy?.allowUpstreams ?? []).map(allowKey));
  const nodes = [...ctx.resolved.values()];
  const own = nodeAddresses(nodes);
  const ports = reservedPorts(nodes);
  for (const a of withUpstreams) {
    mixedUpstreams(ctx, a);
    a.spec.upstream!.urls.forEach((url, i) => {
      const { host, port } = upstreamEndpoint(url);
      const key = endpointKey(host, port);
      if (allowed.has(key)) return;
      const path = ['spec', 'upstream', 'urls', i];
      const hint = `Point the upstream at the service's own address. Only the fleet's operator can allow this one: "${key}" in spec.policy.allowUpstreams of the Fleet document.`;
      const node = own.get(canonicalHost(host) ?? host);
      const why = internalHost(host) ?? (node !== undefined ? `an address of node "${node}"` : undefined);
      if (why) report(ctx, a, path, 'upstream-internal', `upstream host ${host} is ${why}: a tenant's app may not reach the node's own services`, hint);
      else if (ports.has(port)) report(ctx, a, path, 'upstream-reserved-port', `upstream port ${port} is ${ports.get(port)}: a tenant's app may not reach edgectl's or Kong's own services on any address`, hint);
    });
  }
}

/**
 * nginx balances one upstream group with one scheme and one path, so render refuses anything
 * else: said here, with the field, instead of failing the render of the whole fleet.
 */
function mixedUpstreams(ctx: RuleContext, a: AppResource): void {
  const shape = (url: string) => {
    const u = new URL(url);
    return `${u.protocol}${u.pathname === '/' ? '' : u.pathname}`;
  };
  const urls = a.spec.upstream!.urls;
  const first = shape(urls[0]);
  const i = urls.findIndex((u) => shape(u) !== first);
  if (i > 0) report(ctx, a, ['spec', 'upstream', 'urls', i], 'upstream-mixed', `upstream ${urls[i]} differs from ${urls[0]} in scheme or path: an app's upstream URLs must all have the same scheme and path`, 'nginx balances one upstream group: give every URL the same scheme and path, or split the app.');
}
