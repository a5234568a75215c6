import type { BundleFile } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import type { ResolvedNode } from '../fleet/model.js';
import { RE } from '../fleet/values.js';
import { parseSshPublicKey } from '../fleet/ssh-public-key.js';

/** The relay's unix user that reverse-tunnelled nodes log in as (docs/transport.md sets it up). */
export const TUNNEL_USER = 'edgectl-tunnel';

/** Where a relay's release keeps its tunnel files (relative to the release). */
export const TUNNEL_DIR = 'tunnel';

/**
 * The options each node's key gets on its relay (sshd(8), AUTHORIZED_KEYS FILE FORMAT):
 * `restrict` turns off everything (port, agent and X11 forwarding, pty, ~/.ssh/rc) and whatever
 * later OpenSSH versions add to it; `port-forwarding` turns forwarding back on; `permitlisten`
 * allows exactly one remote listener, this node's, on loopback; `command` makes any shell or
 * command the key asks for /bin/false. Forwarding in the other direction (direct-tcpip, `ssh -L`)
 * cannot be refused by a key option (`permitopen` has no "none"): the sshd drop-in below does it,
 * with `AllowTcpForwarding remote` and `PermitOpen none` for the tunnel user.
 */
export function authorizedKeyLine(node: string, port: number, key: string): string {
  return `restrict,port-forwarding,permitlisten="127.0.0.1:${port}",command="/bin/false" ${key} edgectl-tunnel:${node}`;
}

/**
 * `tunnel/authorized_keys` of a relay: one line per reverse-tunnelled node whose via chain ends at
 * this relay and whose tunnelKey the fleet holds, sorted by node name. A node removed from the
 * fleet (or its key) is gone from the file at the next apply to the relay. Every value is checked
 * again here, whatever validation did: this file decides who may log in to the relay.
 */
export function renderTunnelKeys(relay: ResolvedNode, nodes: readonly ResolvedNode[]): Buffer {
  const lines = [
    `# Rendered by edgectl for relay ${relay.name}: the reverse tunnels that land here, one key per node.`,
    '# Each key may only listen on its own port of 127.0.0.1; read by sshd through the edgectl-tunnel drop-in.',
  ];
  const behind = nodes.filter((n) => n.tunnel === 'reverse' && n.via[n.via.length - 1] === relay.name && n.tunnelKey && n.tunnelPort !== undefined);
  for (const n of [...behind].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const k = parseSshPublicKey(n.tunnelKey!);
    if (typeof k === 'string' || !RE.dnsLabel.test(n.name) || !Number.isInteger(n.tunnelPort) || n.tunnelPort! < 1 || n.tunnelPort! > 65535) {
      throw new EdgectlError('EDGECTL_RENDER', `node ${JSON.stringify(n.name)}: its tunnel key cannot go into relay ${relay.name}'s authorized_keys${typeof k === 'string' ? `: ${k}` : ''}`);
    }
    lines.push(authorizedKeyLine(n.name, n.tunnelPort!, k.line));
  }
  return Buffer.from(lines.join('\n') + '\n');
}

/**
 * The sshd_config drop-in for the tunnel user, rendered beside the keys for the operator to install
 * once as root (/etc/ssh/sshd_config.d/edgectl-tunnel.conf); never Include it from the release, which
 * the apply user can write. Keys are read with AuthorizedKeysCommand so that sshd's StrictModes
 * (which wants every directory up to the file owned by root or the user) does not refuse a release
 * written by another user, and so that a switch of `current` takes effect for the next login
 * without a reload. ClientAliveInterval × ClientAliveCountMax (30 s) bounds how long a dead node's
 * listener outlives its link: until then a reconnecting node is refused its port and retries.
 */
export function renderTunnelSshdConfig(root: string, user = TUNNEL_USER): Buffer {
  // Both go into sshd's own config: plain path and user name characters only, whatever the fleet says.
  if (!/^\/[A-Za-z0-9._/-]+$/.test(root) || !RE.sshUser.test(user)) throw new EdgectlError('EDGECTL_RENDER', `the tunnel drop-in cannot name root ${JSON.stringify(root)} or user ${JSON.stringify(user)}`);
  const keys = `${root.replace(/\/+$/, '')}/current/${TUNNEL_DIR}/authorized_keys`;
  return Buffer.from([
    `# edgectl reverse tunnels: install as /etc/ssh/sshd_config.d/edgectl-tunnel.conf (root-owned), then reload sshd.`,
    `Match User ${user}`,
    '  AuthorizedKeysFile none',
    `  AuthorizedKeysCommand /usr/bin/cat ${keys}`,
    '  AuthorizedKeysCommandUser nobody',
    '  PasswordAuthentication no',
    '  KbdInteractiveAuthentication no',
    '  AllowTcpForwarding remote',
    '  PermitOpen none',
    '  GatewayPorts no',
    '  AllowAgentForwarding no',
    '  AllowStreamLocalForwarding no',
    '  X11Forwarding no',
    '  PermitTTY no',
    '  PermitTunnel no',
    '  PermitUserRC no',
    '  ForceCommand /bin/false',
    '  ClientAliveInterval 10',
    '  ClientAliveCountMax 3',
    '',
  ].join('\n'));
}

/** The tunnel files of a relay's bundle; none for a relay no reverse tunnel lands on. */
export function tunnelFiles(relay: ResolvedNode, nodes: readonly ResolvedNode[]): BundleFile[] {
  if (relay.role !== 'relay') return [];
  if (!nodes.some((n) => n.tunnel === 'reverse' && n.via[n.via.length - 1] === relay.name)) return [];
  return [
    { path: `${TUNNEL_DIR}/authorized_keys`, data: renderTunnelKeys(relay, nodes), mode: 0o644 },
    { path: `${TUNNEL_DIR}/sshd_config`, data: renderTunnelSshdConfig(relay.root), mode: 0o644 },
  ];
}
