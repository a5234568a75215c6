import { createHash } from 'node:crypto';
import { EdgectlError } from '../errors.js';
import type { FleetModel } from '../fleet/model.js';

/** Ports a node may get in local mode: each of the range's slots is one node's. */
export const DEFAULT_LOCAL_PORT_RANGE = 1000;

export interface LocalMode {
  /** Every node is the directory <root>/<node> on this machine. */
  root: string;
  /** The first port of local mode: see localPorts. */
  portBase: number;
  address: string;
  /** Slots (nodes) the ports are drawn from; default DEFAULT_LOCAL_PORT_RANGE. */
  portRange?: number;
}

/** One node's ports in local mode: its nginx (HTTP, HTTPS), its agent's device API, the agent's admin API (listen + 1) and, for a relay or core node with spec.hops.tls, its TLS forward listener. */
export interface LocalPorts {
  http: number;
  https: number;
  agent: number;
  admin: number;
  hopTls: number;
}

/**
 * Every node of the embedded default runs on this one machine, so each needs ports of its own,
 * and they must not move when the fleet changes: a node keeps its ports when others are added or
 * removed, whatever their names. A node's slot is the hash of its name in [0, range); nodes whose
 * slots collide are placed in the order of their whole hash (never of their names or of the fleet
 * order), each taking the next free slot. Slot s: nginx on base + s, the agent on
 * base + range + 2s and its admin API on the port after, nginx's HTTPS on base + 3 × range + s,
 * the agent's TLS forward listener (relays and core nodes, with spec.hops.tls) on base + 4 × range + s:
 * 5 × range ports from base in all.
 */
export function localPorts(names: readonly string[], o: Pick<LocalMode, 'portBase' | 'portRange'>): Map<string, LocalPorts> {
  const range = o.portRange ?? DEFAULT_LOCAL_PORT_RANGE;
  if (!Number.isInteger(range) || range < 1) throw new EdgectlError('EDGECTL_USAGE', `--local-port-range must be a positive count, got ${range}`);
  if (o.portBase + 5 * range - 1 > 65535) throw new EdgectlError('EDGECTL_USAGE', `local mode uses ports ${o.portBase} to ${o.portBase + 5 * range - 1} (--local-port-base + 5 × --local-port-range), beyond 65535: lower either`);
  const unique = [...new Set(names)];
  if (unique.length > range) throw new EdgectlError('EDGECTL_USAGE', `local mode has ${range} port slots (--local-port-range) for ${unique.length} nodes: raise it`);
  const hashed = unique.map((name) => {
    const h = createHash('sha256').update(name).digest();
    return { name, hex: h.toString('hex'), slot: h.readUInt32BE(0) % range };
  });
  hashed.sort((a, b) => a.slot - b.slot || (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
  const taken = new Set<number>();
  const out = new Map<string, LocalPorts>();
  for (const h of hashed) {
    let s = h.slot;
    while (taken.has(s)) s = (s + 1) % range;
    taken.add(s);
    const agent = o.portBase + range + 2 * s;
    out.set(h.name, { http: o.portBase + s, https: o.portBase + 3 * range + s, agent, admin: agent + 1, hopTls: o.portBase + 4 * range + s });
  }
  return out;
}

/**
 * The embedded default: each node's root under the local directory and its own ports
 * (localPorts) for nginx and the agent. Done on a copy of the model before rendering, so the
 * rendered configs, the plan and the health checks all agree.
 */
export function localModel(model: FleetModel, local: LocalMode): FleetModel {
  const ports = localPorts(model.nodes.map((n) => n.name), local);
  const host = local.address.includes(':') ? `[${local.address.replace(/^\[(.*)\]$/, '$1')}]` : local.address;
  return {
    ...model,
    nodes: model.nodes.map((n) => {
      const p = ports.get(n.name)!;
      // localDemo: proxy apps are answered by a stand-in on the node (ResolvedNode.standIn), not their upstreams.
      const hop = n.spec.role === 'relay' || n.spec.role === 'core' ? { localHopTlsPort: p.hopTls } : {};
      return { ...n, localDemo: true as const, ...hop, spec: { ...n.spec, root: `${local.root.replace(/\/+$/, '')}/${n.name}`, http: { address: local.address, port: p.http }, https: { port: p.https }, agent: { ...n.spec.agent, listen: `${host}:${p.agent}` } } };
    }),
  };
}
