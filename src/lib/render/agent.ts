import { createHash } from 'node:crypto';
import { agentAdminAddress, agentAdminTokenFile, agentConfigSchema, agentDataDir, agentTenantSchema, fastcgiAppSchema, type AgentConfig, type AgentTenant, type AgentTopic, type FastcgiApp } from '../bundle/agent-json.js';
import { sha256Hex } from '../bundle/manifest.js';
import type { PayloadFile } from './payloads.js';
import { EdgectlError } from '../errors.js';
import { appTopics, type AppResource, type ResolvedNode } from '../fleet/model.js';
import { RE, durationSeconds } from '../fleet/values.js';
import { isIP } from 'node:net';
import { appId, type RenderContext } from './context.js';
import { fastcgiSocket } from './nginx.js';
import { acceptForwardFor } from './uplink.js';
import { agentTunnel } from './agent-tunnel.js';
import type { KnownHostEntry } from '../transport/known-hosts.js';
import { HOP_CERT_FILE, HOP_KEY_FILE, hopUpstream, listensForForwards, type HopTls } from '../tls-hop/render.js';
import { nodeHopKeyFile } from '../tls-hop/fleet-ca.js';

const MiB = 1024 * 1024;
export const DEFAULT_SPOOL_MB = 256;

/**
 * agent/agent.json for one node. Edge nodes accept the tenants that have an app placed on them;
 * relays and the hub accept every tenant (they carry everyone's traffic). Upstreams: the last
 * relay in `via` (the hop next to the node), else the fleet's hub. acceptForward: the nodes that
 * forward here (uplink.ts). The admin API is always on loopback, whatever the listen address.
 *
 * Checked against the agent's own schema: tenants once each, node settings once per distinct
 * combination (both repeat on thousands of nodes), the node name per node.
 */
type NodePart = Omit<AgentConfig, 'format' | 'node' | 'tenants' | 'fastcgi' | 'acceptForward'>;
const caches = new WeakMap<RenderContext, { tenants: Map<string, AgentTenant>; parts: Map<string, NodePart> }>();

function cacheOf(ctx: RenderContext) {
  let c = caches.get(ctx);
  if (!c) caches.set(ctx, (c = { tenants: new Map(), parts: new Map() }));
  return c;
}

function invalid(what: string, issues: { path: (string | number)[]; message: string }[]): never {
  const i = issues[0];
  throw new EdgectlError('EDGECTL_RENDER', `${what}: agent.json would be invalid at ${i.path.join('.')}: ${i.message}`);
}

function cachedTenant(ctx: RenderContext, name: string): AgentTenant {
  const m = cacheOf(ctx).tenants;
  let t = m.get(name);
  if (!t) {
    const parsed = agentTenantSchema.safeParse(agentTenant(ctx, name));
    if (!parsed.success) invalid(`tenant ${name}`, parsed.error.issues);
    m.set(name, (t = parsed.data));
  }
  return t;
}

function nodePart(ctx: RenderContext, node: ResolvedNode, hopTls?: HopTls): NodePart {
  const role = node.role === 'core' ? 'hub' : node.role;
  const hop = role === 'hub' ? undefined : nextHop(ctx, node, hopTls);
  const key = `${role}|${node.agent.listen}|${node.agent.maxMessageBytes}|${node.root}|${hop ?? ''}`;
  const m = cacheOf(ctx).parts;
  let part = m.get(key);
  if (!part) {
    const root = node.root.replace(/\/+$/, '');
    const dataDir = agentDataDir(root);
    const parsed = agentConfigSchema.safeParse({
      format: 'edgectl-agent/v1',
      node: 'placeholder',
      role,
      listen: node.agent.listen,
      admin: adminAddress(node),
      adminTokenFile: agentAdminTokenFile(dataDir),
      dataDir,
      maxMessageBytes: node.agent.maxMessageBytes,
      upstreams: hop ? [hop] : [],
      credentialFile: `${root}/secrets/agent-token`,
      acceptForward: [],
      ...(role === 'hub' ? { sink: `file:${root}/spool/sink.jsonl` } : {}),
      tenants: [],
      metering: { root, accessLog: `${root}/log/access.log`, nginxPidFile: `${root}/run/nginx.pid` },
      fastcgi: [],
    });
    if (!parsed.success) invalid(`node ${node.name}`, parsed.error.issues);
    const { format: _f, node: _n, tenants: _t, fastcgi: _c, acceptForward: _a, ...rest } = parsed.data;
    m.set(key, (part = rest));
  }
  return part;
}

/** digestOf: an app's FastCGI digest (fastcgiDigest); by default as if it shipped no files. knownHosts: see AgentRenderer. hopTls: spec.hops.tls (tls-hop/render.ts). */
export function buildAgentConfig(ctx: RenderContext, node: ResolvedNode, apps: AppResource[], digestOf: (a: AppResource) => string = (a) => fastcgiDigest([], a.spec.fastcgi?.command, a.spec.fastcgi?.processes ?? 1), knownHosts: readonly KnownHostEntry[] = [], hopTls?: HopTls): AgentConfig {
  if (!RE.dnsLabel.test(node.name)) throw new EdgectlError('EDGECTL_RENDER', `node name ${JSON.stringify(node.name)} cannot go into agent.json`);
  const p = nodePart(ctx, node, hopTls);
  const root = node.root.replace(/\/+$/, '');
  const tls = hopTls ? hopFields(node, root, hopTls) : {};
  const tunnel = agentTunnel(ctx, node, knownHosts);
  const tenantNames = node.role === 'edge' ? [...new Set(apps.map((a) => a.spec.tenant))].sort() : [...ctx.tenants.keys()].sort();
  // Fields in the contract's order (src/lib/bundle/agent-json.ts), so the file reads like it.
  return {
    format: 'edgectl-agent/v1',
    node: node.name,
    role: p.role,
    listen: p.listen,
    admin: p.admin,
    adminTokenFile: p.adminTokenFile,
    dataDir: p.dataDir,
    maxMessageBytes: p.maxMessageBytes,
    upstreams: p.upstreams,
    credentialFile: p.credentialFile,
    acceptForward: acceptForwardFor(ctx, node),
    ...tls,
    ...(p.sink !== undefined ? { sink: p.sink } : {}),
    tenants: tenantNames.map((t) => cachedTenant(ctx, t)),
    ...(p.metering ? { metering: p.metering } : {}),
    fastcgi: apps.filter((a) => a.spec.type === 'fastcgi').map((a) => fastcgiEntry(node, root, a, digestOf)),
    ...(tunnel ? { tunnel } : {}),
  };
}

function fastcgiEntry(node: ResolvedNode, root: string, a: AppResource, digestOf: (a: AppResource) => string): FastcgiApp {
  const id = appId(a);
  const f = a.spec.fastcgi;
  const entry = { app: id, socket: fastcgiSocket(node, id), root: `${root}/current/apps/${id}`, ...(f?.command ? { command: f.command } : {}), processes: f?.processes ?? 1, digest: digestOf(a) };
  const parsed = fastcgiAppSchema.safeParse(entry);
  if (!parsed.success) invalid(`node ${node.name}, app ${a.name}`, parsed.error.issues.map((i) => ({ ...i, path: ['fastcgi', id, ...i.path] })));
  return parsed.data;
}

/**
 * What a FastCGI app runs from: its payload files as the manifest lists them (path, sha256,
 * mode) and its command and process count. The agent restarts an app when this changes, and
 * only then: a release that changes another app's files leaves its processes alone.
 */
export function fastcgiDigest(files: readonly PayloadFile[], command: readonly string[] | undefined, processes: number): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0))) h.update(`${f.path}\x00${sha256Hex(f.data)}\x00644\n`);
  h.update(`command\x00${JSON.stringify(command ?? null)}\nprocesses\x00${processes}\n`);
  return h.digest('hex');
}

function adminAddress(node: ResolvedNode): string {
  const a = agentAdminAddress(node.agent.listen);
  if (!a) throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: the agent's admin port is its listen port + 1, and ${node.agent.listen} leaves none`);
  return `${a.host}:${a.port}`;
}

/** spec.hops.tls: a relay's or core node's TLS forward listener (all addresses), and the pinned fleet CA of every forwarding node. */
function hopFields(node: ResolvedNode, root: string, hopTls: HopTls): Pick<AgentConfig, 'forwardTls' | 'upstreamCa'> {
  return {
    ...(listensForForwards(node) ? { forwardTls: { listen: hopListen(node, hopTls.port), certFile: `${root}/current/${HOP_CERT_FILE}`, keyFile: hopTls.keyOnNode.has(node.name) ? nodeHopKeyFile(root) : `${root}/current/${HOP_KEY_FILE}` } } : {}),
    ...(node.role !== 'core' ? { upstreamCa: hopTls.caPem } : {}),
  };
}

/** All addresses on the fleet's port; in local mode (every node on this machine) the node's own port on the local address. */
function hopListen(node: ResolvedNode, port: number): string {
  if (node.hopTlsPort === undefined) return `0.0.0.0:${port}`;
  const host = node.http.address ?? '127.0.0.1';
  return `${isIP(host) === 6 ? `[${host}]` : host}:${node.hopTlsPort}`;
}

function nextHop(ctx: RenderContext, node: ResolvedNode, hopTls?: HopTls): string {
  const last = node.via[node.via.length - 1];
  if (last === undefined) return ctx.model.fleet.spec.hub.url;
  const relay = ctx.nodeByName.get(last);
  if (!relay) throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: unknown relay ${last}`);
  if (hopTls) return hopUpstream(ctx, relay, relay.hopTlsPort ?? hopTls.port);
  const host = relay.http.address ?? relay.address;
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${relay.http.port}/v1/forward`;
}

function agentTenant(ctx: RenderContext, name: string): AgentTenant {
  const t = ctx.tenants.get(name);
  const topics = new Map<string, AgentTopic>();
  for (const a of ctx.appsByTenant.get(name) ?? []) {
    for (const tp of appTopics(a.spec)) {
      if (topics.has(tp.name)) continue;
      topics.set(tp.name, { name: tp.name, whenFull: tp.whenFull, ...(tp.ttl ? { ttlSeconds: Math.max(1, Math.ceil(durationSeconds(tp.ttl))) } : {}) });
    }
  }
  const quota = t?.spec.quota;
  return {
    name,
    tokens: (t?.spec.uplink?.tokens ?? []).map((k) => k.sha256).sort(),
    topics: [...topics.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    spoolBytes: (quota?.spoolMb ?? DEFAULT_SPOOL_MB) * MiB,
    ...(quota?.requestsPerSecond !== undefined ? { requestsPerSecond: quota.requestsPerSecond } : {}),
  };
}

/** agent.json bytes for one node. */
export class AgentRenderer {
  /** FastCGI digests by app name: one app's payload goes to many nodes, hashed once. */
  private readonly digests = new Map<string, string>();

  /** knownHosts: the fleet's known_hosts, where a reverse node's relay key is found when the relay pins none. */
  constructor(private readonly ctx: RenderContext, private readonly payloads: ReadonlyMap<string, PayloadFile[]> = new Map(), private readonly knownHosts: readonly KnownHostEntry[] = [], private readonly hopTls?: HopTls) {}

  private readonly digestOf = (a: AppResource): string => {
    let d = this.digests.get(a.name);
    if (d === undefined) this.digests.set(a.name, (d = fastcgiDigest(this.payloads.get(a.name) ?? [], a.spec.fastcgi?.command, a.spec.fastcgi?.processes ?? 1)));
    return d;
  };

  render(node: ResolvedNode, apps: AppResource[]): Buffer {
    return Buffer.from(JSON.stringify(buildAgentConfig(this.ctx, node, apps, this.digestOf, this.knownHosts, this.hopTls), null, 2) + '\n');
  }
}
