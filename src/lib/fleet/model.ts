import type { AppSpec, FleetSpec, Kind, NodeSpec, TenantSpec } from './schema.js';
import type { ParsedDoc } from './parse.js';

export interface Resource<K extends Kind, S> {
  kind: K;
  name: string;
  labels: Record<string, string>;
  spec: S;
  /** Where the document is: for problems found later (rules, render). */
  source: ParsedDoc;
  /** Set by the embedded default only (nodes/local-mode.ts), never by a fleet: see ResolvedNode.standIn. */
  localDemo?: true;
  /** Set by the embedded default only: a relay's or core node's TLS forward listener port (ResolvedNode.hopTlsPort). */
  localHopTlsPort?: number;
}

export type FleetResource = Resource<'Fleet', FleetSpec>;
export type TenantResource = Resource<'Tenant', TenantSpec>;
export type NodeResource = Resource<'Node', NodeSpec>;
export type AppResource = Resource<'App', AppSpec>;

/** Node settings with the fleet's defaults applied: what render and apply work from. */
export interface ResolvedNode {
  name: string;
  labels: Record<string, string>;
  role: 'core' | 'relay' | 'edge';
  address: string;
  ssh: { user: string; port: number; hostKey?: string; identityFile?: string };
  root: string;
  via: string[];
  tunnel: 'none' | 'reverse';
  /** tunnel: reverse: the port on the last relay's 127.0.0.1 where the node's tunnel lands. */
  tunnelPort?: number;
  /** tunnel: reverse: `type base64` of the key the node's agent authenticates to its relay with (no comment). */
  tunnelKey?: string;
  capacity: { cpu: number; memoryMb: number };
  kong: boolean;
  http: { address?: string; port: number };
  /** HTTPS for apps with spec.tls, on http.address. */
  https: { port: number };
  agent: { listen: string; maxMessageBytes: number };
  nginx: { binary: string; workerProcesses: 'auto' | number; workerConnections: number };
  /** sha256 of the credential the node forwards uplink data with; none: its parent refuses it. */
  credentialSha256?: string;
  /**
   * The embedded default's stand-in for proxy apps' upstreams: a unix socket under the node's root
   * where its own nginx answers, so nothing a local demo serves is proxied off this machine.
   */
  standIn?: string;
  /** The embedded default: this node's own TLS forward listener port (spec.hops.tls.port otherwise). */
  hopTlsPort?: number;
}

export interface ResolvedTopic {
  name: string;
  whenFull: 'reject' | 'drop-oldest';
  ttl?: string;
}

/** A valid fleet, sorted by name within each kind so every consumer sees a stable order. */
export interface FleetModel {
  name: string;
  fleet: FleetResource;
  tenants: TenantResource[];
  nodes: NodeResource[];
  apps: AppResource[];
  commit?: string;
  dirty: boolean;
}

export const DEFAULTS = {
  sshUser: 'edge',
  sshPort: 22,
  root: '/var/lib/edgectl',
  httpPort: 80,
  httpsPort: 443,
  agentListen: '127.0.0.1:7311',
  maxMessageBytes: 1024 * 1024,
  nginxBinary: '/usr/sbin/nginx',
  workerConnections: 1024,
  cpu: 1,
  memoryMb: 1024,
} as const;

export function resolveNode(fleet: Pick<FleetSpec, 'defaults'>, n: NodeResource): ResolvedNode {
  const d = fleet.defaults ?? {};
  const s = n.spec;
  return {
    name: n.name,
    labels: n.labels,
    role: s.role,
    address: s.address,
    ssh: {
      user: s.ssh?.user ?? d.ssh?.user ?? DEFAULTS.sshUser,
      port: s.ssh?.port ?? d.ssh?.port ?? DEFAULTS.sshPort,
      hostKey: s.ssh?.hostKey,
      identityFile: s.ssh?.identityFile ?? d.ssh?.identityFile,
    },
    root: s.root ?? d.root ?? DEFAULTS.root,
    via: s.via ?? [],
    tunnel: s.tunnel ?? 'none',
    tunnelPort: s.tunnelPort,
    tunnelKey: s.tunnelKey?.split(' ').slice(0, 2).join(' '),
    capacity: { cpu: s.capacity?.cpu ?? DEFAULTS.cpu, memoryMb: s.capacity?.memoryMb ?? DEFAULTS.memoryMb },
    kong: s.kong ?? false,
    http: { address: s.http?.address ?? d.http?.address, port: s.http?.port ?? d.http?.port ?? DEFAULTS.httpPort },
    https: { port: s.https?.port ?? d.https?.port ?? DEFAULTS.httpsPort },
    agent: {
      listen: s.agent?.listen ?? d.agent?.listen ?? DEFAULTS.agentListen,
      maxMessageBytes: s.agent?.maxMessageBytes ?? d.agent?.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    },
    nginx: {
      binary: s.nginx?.binary ?? d.nginx?.binary ?? DEFAULTS.nginxBinary,
      workerProcesses: s.nginx?.workerProcesses ?? d.nginx?.workerProcesses ?? 'auto',
      workerConnections: s.nginx?.workerConnections ?? d.nginx?.workerConnections ?? DEFAULTS.workerConnections,
    },
    credentialSha256: s.credential?.sha256,
    ...(n.localDemo ? { standIn: `${(s.root ?? d.root ?? DEFAULTS.root).replace(/\/+$/, '')}/run/demo-upstream.sock` } : {}),
    ...(n.localHopTlsPort ? { hopTlsPort: n.localHopTlsPort } : {}),
  };
}

const resolved = new WeakMap<FleetModel, ReadonlyMap<string, ResolvedNode>>();

/** A list of nodes resolved with the fleet's defaults, by name in list order (validation's rules resolve them once with this). */
export function resolveNodes(nodes: readonly NodeResource[], defaults: FleetSpec['defaults']): ReadonlyMap<string, ResolvedNode> {
  return new Map(nodes.map((n) => [n.name, resolveNode({ defaults }, n)]));
}

/**
 * Every node of the model resolved, by name in fleet order: computed once per model, however
 * many parts of a run ask (render, placement, the connector, rollback, spool). A model is not
 * changed after it is loaded; local mode makes a new one (nodes/local-mode.ts). Validation
 * resolves its own copy, so the renderer's guards see the model's values as they are when it
 * runs, not what validation saw.
 */
export function resolvedNodes(model: FleetModel): ReadonlyMap<string, ResolvedNode> {
  let m = resolved.get(model);
  if (!m) resolved.set(model, (m = resolveNodes(model.nodes, model.fleet.spec.defaults)));
  return m;
}

export function appTopics(app: AppSpec): ResolvedTopic[] {
  return (app.uplink?.topics ?? []).map((t) => (typeof t === 'string' ? { name: t, whenFull: 'reject' as const } : { name: t.name, whenFull: t.whenFull ?? 'reject', ttl: t.ttl }));
}

/** An app's payload directory in the fleet repo (static sites, FastCGI apps), with the field that names it. */
export function appPayloadDir(app: AppResource): { dir: string; field: (string | number)[] } | undefined {
  if (app.spec.type === 'static' && app.spec.static?.path) return { dir: app.spec.static.path, field: ['spec', 'static', 'path'] };
  if (app.spec.type === 'fastcgi' && app.spec.fastcgi?.path) return { dir: app.spec.fastcgi.path, field: ['spec', 'fastcgi', 'path'] };
  return undefined;
}
