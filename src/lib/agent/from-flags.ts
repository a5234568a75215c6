import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { agentConfigSchema, type AgentConfig } from '../bundle/agent-json.js';
import { EdgectlError, errorMessage } from '../errors.js';

/** Every agent.json field as a flag; flags win over the file. Repeatable flags are arrays. */
export interface AgentFlags {
  config?: string;
  /** The text of `config`, when the caller already read it (to hash exactly the bytes it runs). */
  configText?: string;
  node?: string;
  role?: string;
  listen?: string;
  admin?: string;
  adminTokenFile?: string;
  data?: string;
  upstream?: string[];
  sink?: string;
  credentialFile?: string;
  acceptForward?: string[];
  token?: string[];
  topic?: string[];
  spoolBytes?: number;
  maxMessageBytes?: number;
  requestTimeoutMs?: number;
  heartbeatSeconds?: number;
  maxBatchBytes?: number;
  maxBatchMessages?: number;
  forwardBatchMessages?: number;
  forwardBatchBytes?: number;
  dedupeWindow?: number;
  forwardInflightBytes?: number;
  forwardTlsListen?: string;
  forwardTlsCert?: string;
  forwardTlsKey?: string;
  /** A PEM file: its text becomes upstreamCa. */
  upstreamCaFile?: string;
}

type Raw = Record<string, unknown> & { tenants?: Record<string, unknown>[] };

function tenantOf(raw: Raw, name: string, spoolBytes: number): Record<string, unknown> & { tokens: string[]; topics: Record<string, unknown>[] } {
  raw.tenants ??= [];
  let t = raw.tenants.find((x) => x.name === name) as ReturnType<typeof tenantOf> | undefined;
  if (!t) {
    t = { name, tokens: [], topics: [], spoolBytes };
    raw.tenants.push(t);
  }
  return t;
}

/** Builds and validates the agent configuration; every problem names the field (or flag) at fault. */
export async function resolveAgentConfig(f: AgentFlags): Promise<AgentConfig> {
  let raw: Raw = {};
  if (f.config) {
    let text: string;
    try {
      text = f.configText ?? await readFile(f.config, 'utf8');
    } catch (err) {
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot read ${f.config}: ${errorMessage(err)}`);
    }
    try {
      raw = JSON.parse(text) as Raw;
    } catch (err) {
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `${f.config} is not valid JSON: ${errorMessage(err)}`);
    }
  } else {
    raw = {
      format: 'edgectl-agent/v1',
      node: hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'agent',
      listen: '127.0.0.1:8480', admin: '127.0.0.1:8481', maxMessageBytes: 1 << 20, upstreams: [], tenants: [],
    };
  }
  const set = (k: string, v: unknown) => { if (v !== undefined) raw[k] = v; };
  set('node', f.node); set('role', f.role); set('listen', f.listen); set('admin', f.admin); set('dataDir', f.data);
  set('sink', f.sink); set('credentialFile', f.credentialFile); set('maxMessageBytes', f.maxMessageBytes);
  set('requestTimeoutMs', f.requestTimeoutMs); set('heartbeatSeconds', f.heartbeatSeconds);
  set('maxBatchBytes', f.maxBatchBytes); set('maxBatchMessages', f.maxBatchMessages); set('dedupeWindow', f.dedupeWindow);
  set('forwardBatchMessages', f.forwardBatchMessages); set('forwardBatchBytes', f.forwardBatchBytes);
  set('adminTokenFile', f.adminTokenFile); set('forwardInflightBytes', f.forwardInflightBytes);
  if (f.upstream?.length) raw.upstreams = f.upstream;
  if (f.forwardTlsListen || f.forwardTlsCert || f.forwardTlsKey) {
    const t = (raw.forwardTls ?? {}) as Record<string, unknown>;
    raw.forwardTls = { ...t, ...(f.forwardTlsListen ? { listen: f.forwardTlsListen } : {}), ...(f.forwardTlsCert ? { certFile: f.forwardTlsCert } : {}), ...(f.forwardTlsKey ? { keyFile: f.forwardTlsKey } : {}) };
  }
  if (f.upstreamCaFile) {
    try {
      raw.upstreamCa = await readFile(f.upstreamCaFile, 'utf8');
    } catch (err) {
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `--upstream-ca ${f.upstreamCaFile}: ${errorMessage(err)}`);
    }
  }
  if (f.acceptForward?.length) {
    raw.acceptForward = f.acceptForward.map((spec) => {
      const m = /^([^:]+):([^:]+)(?::([^:]*))?$/.exec(spec);
      if (!m) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `--accept-forward ${spec}: expected NODE:SHA256[:BEHIND,BEHIND...]`);
      return { node: m[1], sha256: m[2], behind: m[3] ? m[3].split(',') : [] };
    });
  }
  const spoolBytes = f.spoolBytes ?? 1 << 30;
  for (const tok of f.token ?? []) {
    const m = /^([^:]+):(.+)$/.exec(tok);
    if (!m) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `--token ${tok}: expected TENANT:SHA256`);
    tenantOf(raw, m[1], spoolBytes).tokens.push(m[2]);
  }
  for (const spec of f.topic ?? []) {
    const m = /^([^/]+)\/([^:]+)((?::[^:]+)*)$/.exec(spec);
    if (!m) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `--topic ${spec}: expected TENANT/TOPIC[:reject|:drop-oldest][:ttl=SECONDS]`);
    const topic: Record<string, unknown> = { name: m[2] };
    for (const opt of m[3].split(':').filter(Boolean)) {
      if (opt === 'reject' || opt === 'drop-oldest') topic.whenFull = opt;
      else if (/^ttl=\d+$/.test(opt)) topic.ttlSeconds = Number(opt.slice(4));
      else throw new EdgectlError('EDGECTL_AGENT_CONFIG', `--topic ${spec}: unknown option "${opt}"`);
    }
    tenantOf(raw, m[1], spoolBytes).topics.push(topic);
  }
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new EdgectlError('EDGECTL_AGENT_CONFIG', `invalid agent configuration${f.config ? ` in ${f.config}` : ''}`, { detail: problems });
  }
  const fromFlags = Boolean(f.upstream?.length);
  parsed.data.upstreams = parsed.data.upstreams.map((u, i) => forwardUrl(u, fromFlags ? `--upstream ${u}` : `upstreams[${i}]${f.config ? ` in ${f.config}` : ''}`));
  return parsed.data;
}

const FORWARD_PATH = '/v1/forward';

/**
 * The next hop's POST /v1/forward URL. A base URL (no path) gets the path; any other path is
 * refused at start: the next hop would answer every batch 404 and the forwarder retry for ever.
 */
export function forwardUrl(raw: string, where: string): string {
  const u = new URL(raw);
  const hint = `give the next hop's base URL (http://relay.example:8480) or its ${FORWARD_PATH} URL (http://relay.example:8480${FORWARD_PATH})`;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EdgectlError('EDGECTL_AGENT_CONFIG', `${where}: an upstream must be an http:// or https:// URL`, { hint });
  const p = u.pathname.replace(/\/+$/, '');
  if (p === '') u.pathname = FORWARD_PATH;
  else if (p.endsWith(FORWARD_PATH)) u.pathname = p;
  else throw new EdgectlError('EDGECTL_AGENT_CONFIG', `${where}: the path ${u.pathname} is not the hop API (${FORWARD_PATH}); every batch sent there would be refused`, { hint });
  return u.toString();
}
