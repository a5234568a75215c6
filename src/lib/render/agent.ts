import { agentConfigSchema, agentTenantSchema, type AgentConfig, type AgentTenant, type AgentTopic } from '../agent/config.js';
import { EdgectlError } from '../errors.js';
import { appTopics, type AppResource, type ResolvedNode } from '../fleet/model.js';
import { durationSeconds } from '../fleet/values.js';
import { isIP } from 'node:net';
import { appId, type RenderContext } from './context.js';
import { fastcgiSocket } from './nginx.js';

const MiB = 1024 * 1024;
export const DEFAULT_SPOOL_MB = 256;

/**
 * agent/agent.json for one node. Edge nodes accept the tenants that have an app placed on them;
 * relays and the hub accept every tenant (they carry everyone's traffic). Upstreams: the last
 * relay in `via` (the hop next to the node), else the fleet's hub.
 */
// Tenants are checked against the schema once each (they repeat on thousands of nodes); the rest of
// the config is checked per node.
const nodePartSchema = agentConfigSchema.omit({ tenants: true });
const tenantCache = new WeakMap<RenderContext, Map<string, AgentTenant>>();

function cachedTenant(ctx: RenderContext, name: string): AgentTenant {
  let m = tenantCache.get(ctx);
  if (!m) tenantCache.set(ctx, (m = new Map()));
  let t = m.get(name);
  if (!t) {
    const parsed = agentTenantSchema.safeParse(agentTenant(ctx, name));
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new EdgectlError('EDGECTL_RENDER', `tenant ${name}: agent.json would be invalid at ${i.path.join('.')}: ${i.message}`);
    }
    m.set(name, (t = parsed.data));
  }
  return t;
}

export function buildAgentConfig(ctx: RenderContext, node: ResolvedNode, apps: AppResource[]): AgentConfig {
  const root = node.root.replace(/\/+$/, '');
  const role = node.role === 'core' ? 'hub' : node.role;
  const tenantNames = node.role === 'edge' ? [...new Set(apps.map((a) => a.spec.tenant))].sort() : [...ctx.tenants.keys()].sort();
  const cfg = {
    format: 'edgectl-agent/v1',
    node: node.name,
    role,
    listen: node.agent.listen,
    admin: adminAddress(node),
    dataDir: `${root}/spool`,
    maxMessageBytes: node.agent.maxMessageBytes,
    upstreams: role === 'hub' ? [] : [nextHop(ctx, node)],
    credentialFile: `${root}/secrets/agent-token`,
    acceptForward: [],
    ...(role === 'hub' ? { sink: `file:${root}/spool/sink.jsonl` } : {}),
    fastcgi: apps.filter((a) => a.spec.type === 'fastcgi').map((a) => {
      const id = appId(a);
      return { app: id, socket: fastcgiSocket(node, id), root: `${root}/current/apps/${id}` };
    }),
  };
  const parsed = nodePartSchema.safeParse(cfg);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: agent.json would be invalid at ${i.path.join('.')}: ${i.message}`);
  }
  const tenants = tenantNames.map((t) => cachedTenant(ctx, t));
  // Fields in the schema's order, so the file reads like the contract.
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(agentConfigSchema.shape)) {
    const v = k === 'tenants' ? tenants : (parsed.data as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as AgentConfig;
}

function adminAddress(node: ResolvedNode): string {
  const i = node.agent.listen.lastIndexOf(':');
  const port = Number(node.agent.listen.slice(i + 1)) + 1;
  if (port > 65535) throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: the agent's admin port is its listen port + 1, and ${node.agent.listen} leaves none`);
  return `${node.agent.listen.slice(0, i)}:${port}`;
}

function nextHop(ctx: RenderContext, node: ResolvedNode): string {
  const last = node.via[node.via.length - 1];
  if (last === undefined) return ctx.model.fleet.spec.hub.url;
  const relay = ctx.nodeByName.get(last);
  if (!relay) throw new EdgectlError('EDGECTL_RENDER', `node ${node.name}: unknown relay ${last}`);
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

const NAME_PLACEHOLDER = 'edgectl-node-name-placeholder';

/**
 * agent.json bytes per node. Nodes that differ only by name (the usual case at fleet scale)
 * share one rendered and validated text, with the name filled in.
 */
export class AgentRenderer {
  private readonly texts = new Map<string, string>();

  constructor(private readonly ctx: RenderContext) {}

  render(node: ResolvedNode, apps: AppResource[]): Buffer {
    const hop = node.role === 'core' ? '' : nextHop(this.ctx, node);
    const key = [node.role, node.agent.listen, node.agent.maxMessageBytes, node.root, hop, ...apps.map((a) => a.name)].join('|');
    let text = this.texts.get(key);
    if (text === undefined) {
      const cfg = buildAgentConfig(this.ctx, { ...node, name: NAME_PLACEHOLDER }, apps);
      text = JSON.stringify(cfg, null, 2) + '\n';
      this.texts.set(key, text);
    }
    const named = text.replace(`"node": "${NAME_PLACEHOLDER}"`, `"node": ${JSON.stringify(node.name)}`);
    if (!RE_NODE.test(node.name) || named === text) throw new EdgectlError('EDGECTL_RENDER', `node ${JSON.stringify(node.name)}: not a valid node name for agent.json`);
    return Buffer.from(named);
  }
}

const RE_NODE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
