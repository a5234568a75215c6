import { agentTunnelSchema, tunnelKeyFile, type AgentTunnel } from '../bundle/agent-json.js';
import { RE } from '../fleet/values.js';
import { EdgectlError } from '../errors.js';
import type { ResolvedNode } from '../fleet/model.js';
import { unbracket } from '../fleet/ip.js';
import { entryMatches, hostName, keyLine, type KnownHostEntry } from '../transport/known-hosts.js';
import type { RenderContext } from './context.js';
import { TUNNEL_USER } from './tunnel-keys.js';

/**
 * agent.json's `tunnel` for a tunnel: reverse node: dial the last relay of its via chain where the
 * fleet says the relay is, as TUNNEL_USER, verify the relay's host key against the keys the fleet
 * pins for it (its spec.ssh.hostKey, else its lines in the fleet's known_hosts; revoked ones
 * never), and land on the relay's 127.0.0.1:tunnelPort, handing connections to the node's sshd.
 */
export function agentTunnel(ctx: RenderContext, node: ResolvedNode, knownHosts: readonly KnownHostEntry[]): AgentTunnel | undefined {
  if (node.tunnel !== 'reverse' || node.tunnelPort === undefined) return undefined;
  const last = node.via[node.via.length - 1];
  const relay = last === undefined ? undefined : ctx.nodeByName.get(last);
  if (!relay) throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: tunnel: reverse needs a relay in via`);
  const parsed = agentTunnelSchema.safeParse({
    relay: relay.name,
    host: unbracket(relay.address),
    port: relay.ssh.port,
    user: TUNNEL_USER,
    hostKeys: relayHostKeys(relay, knownHosts),
    remotePort: node.tunnelPort,
    keyFile: tunnelKeyFile(node.root),
    target: `127.0.0.1:${node.ssh.port}`,
  });
  // A config the agent would refuse would stop its HTTPQ too: refused here, naming the node.
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: agent.json would be invalid at tunnel.${i.path.join('.')}: ${i.message}`);
  }
  return parsed.data;
}

export function relayHostKeys(relay: ResolvedNode, knownHosts: readonly KnownHostEntry[]): string[] {
  const revoked = knownHosts.filter((e) => e.marker === 'revoked').map((e) => e.key);
  const ok = (blob: Buffer) => !revoked.some((r) => r.equals(blob));
  if (relay.ssh.hostKey) {
    const blob = Buffer.from(relay.ssh.hostKey.split(' ')[1], 'base64');
    return ok(blob) ? [keyLine(blob)] : [];
  }
  const name = hostName(relay.address, relay.ssh.port);
  // The type comes from the blob, which the fleet's file may have crafted: only plain key lines.
  const lines = knownHosts.filter((e) => !e.marker && entryMatches(e, name) && ok(e.key)).map((e) => keyLine(e.key)).filter((l) => RE.hostKey.test(l));
  return [...new Set(lines)].sort();
}
