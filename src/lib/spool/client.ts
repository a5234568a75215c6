import { EdgectlError, errorMessage } from '../errors.js';
import type { Transport } from '../transport/types.js';
import type { AgentStatus } from '../agent/status.js';
import type { SinkRecord } from '../agent/sinks/format.js';
import { agentAdminAddress, agentAdminTokenFile, agentDataDir } from '../bundle/agent-json.js';
import { ADMIN_TOKEN } from '../agent/admin-token.js';
import { createHttpClient, type HttpClient } from '../http-client.js';
import { unbracket } from '../fleet/ip.js';
import type { LocalMode } from '../nodes/local-mode.js';

/**
 * How `edgectl spool` talks to a node's agent: its loopback admin API, reached either through the
 * node's transport (SSH, relays included) or directly by URL for a local agent. Only the agent
 * opens its LevelDB; the CLI never touches the files. Every request carries the agent's admin
 * token, read from the node (through the transport, as the SSH user: the agent's own user) or
 * from --admin-token-file.
 */
export interface AdminApi {
  readonly where: string;
  request(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: Buffer }>;
}

const checkToken = (text: string, where: string): string => {
  const token = text.trim();
  if (!ADMIN_TOKEN.test(token)) throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `${where} does not hold an admin token (64 hex digits)`);
  return token;
};

/** A local token file (--admin-token-file): a regular file of a few bytes, never a FIFO or a device read without end. */
async function readLocalToken(file: string): Promise<string> {
  const { open } = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new EdgectlError('EDGECTL_USAGE', `cannot read --admin-token-file ${file}: ${errorMessage(err)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > 1024) throw new EdgectlError('EDGECTL_USAGE', `--admin-token-file ${file} is not a token file (a regular file of at most 1 KiB)`);
    return checkToken((await fh.readFile()).toString('utf8'), file);
  } finally {
    await fh.close();
  }
}

const noToken = (where: string) => new EdgectlError('EDGECTL_AGENT_REFUSED', `the agent at ${where} refused the request: no admin token, or not this agent's`, {
  hint: 'With --admin, give --admin-token-file <the agent\'s data dir>/admin-token; with --node the token is read on the node from <root>/spool/admin-token.',
});

/** A local agent's admin API at `url` (HOST:PORT, the form the agent's own --admin flag takes, means http://HOST:PORT), asked through `http` (the caller closes it). */
export function adminByUrl(url: string, http: HttpClient, tokenFile?: string): AdminApi {
  const full = /^(?:[\w.-]+|\[[0-9a-fA-F:.]+\]):\d+$/.test(url) ? `http://${url}` : url;
  const base = URL.canParse(full) ? new URL(full) : undefined;
  if (!base || !/^https?:$/.test(base.protocol)) throw new EdgectlError('EDGECTL_USAGE', `--admin must be HOST:PORT or an http:// URL (e.g. 127.0.0.1:8481), got ${url}`);
  let token: Promise<string> | undefined;
  return {
    where: base.origin,
    async request(method, path) {
      token ??= tokenFile ? readLocalToken(tokenFile) : undefined;
      const headers = token ? { authorization: `Bearer ${await token}` } : undefined;
      try {
        const r = await http.request(new URL(path, base), { method, headers, timeoutMs: 15_000 });
        return { status: r.status, body: r.body };
      } catch (err) {
        throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `cannot reach the agent admin API at ${base.origin}: ${errorMessage(err)}`, { hint: 'Is `edgectl agent` running there? Check --admin.' });
      }
    },
  };
}

/** The admin token where render puts it (agent.json adminTokenFile: <root>/spool/admin-token), read on the node. */
async function nodeToken(t: Transport): Promise<string> {
  if (!t.root) throw new EdgectlError('EDGECTL_INTERNAL', `${t.node}: the transport does not know the node's root`);
  const file = agentAdminTokenFile(agentDataDir(t.root));
  const st = await t.stat(file);
  if (!st) throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `${t.node}: no admin token at ${file}`, { hint: 'The agent creates it when it starts: is the agent running on the node (systemctl status edgectl-agent), as the SSH user?' });
  if (st.type !== 'file' || st.size > 1024) throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `${t.node}: ${file} is not a token file (a regular file of at most 1 KiB)`);
  const data = await t.readFile(file);
  if (!data) throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `${t.node}: no admin token at ${file}`);
  return checkToken(data.toString('utf8'), `${t.node}:${file}`);
}

/** The admin API at the address `render` writes into agent.json (agentAdminAddress, on loopback), as seen from the node. */
export function adminByTransport(t: Transport, agentListen: string): AdminApi {
  const a = agentAdminAddress(agentListen);
  if (!a) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `${t.node}: agent listen ${agentListen} leaves no admin port (listen port + 1)`);
  const host = unbracket(a.host);
  const port = a.port;
  let token: Promise<string> | undefined;
  return {
    where: `${t.node} (${host}:${port})`,
    async request(method, path) {
      token ??= nodeToken(t);
      const headers = { authorization: `Bearer ${await token}` };
      try {
        const r = await t.http({ host, port, method, path, headers, timeoutMs: 15_000 });
        return { status: r.status, body: r.body };
      } catch (err) {
        throw new EdgectlError('EDGECTL_AGENT_UNREACHABLE', `cannot reach the agent on ${t.node} at ${host}:${port}: ${errorMessage(err)}`, { hint: 'Is the agent running on the node? (systemctl status edgectl-agent)' });
      }
    },
  };
}

async function call<T>(api: AdminApi, method: 'GET' | 'POST', path: string): Promise<T> {
  const r = await api.request(method, path);
  let body: unknown;
  try {
    body = JSON.parse(r.body.toString('utf8'));
  } catch {
    throw new EdgectlError('EDGECTL_AGENT_REFUSED', `the agent at ${api.where} answered ${r.status} with something that is not JSON`);
  }
  if (r.status === 401) throw noToken(api.where);
  if (r.status !== 200) throw new EdgectlError('EDGECTL_AGENT_REFUSED', `the agent at ${api.where} answered ${r.status}: ${(body as { message?: string }).message ?? ''}`);
  return body as T;
}

const qs = (o: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

export function spoolStatus(api: AdminApi, f: { tenant?: string; topic?: string }): Promise<AgentStatus> {
  return call(api, 'GET', `/v1/spool${qs(f)}`);
}

export function spoolPeek(api: AdminApi, tenant: string, topic: string, limit: number): Promise<{ tenant: string; topic: string; messages: (SinkRecord & { bytes: number })[] }> {
  return call(api, 'GET', `/v1/spool/peek${qs({ tenant, topic, limit })}`);
}

export function spoolPurge(api: AdminApi, f: { tenant?: string; topic?: string }): Promise<{ removed: { tenant: string; topic: string; count: number; bytes: number }[] }> {
  return call(api, 'POST', `/v1/spool/purge${qs(f)}`);
}

/** local: the embedded default, whose nodes' agents have ports of their own (nodes/local-mode.ts). */
export type AdminTarget = { node?: string; fleet: string; identity?: string[]; admin?: string; adminTokenFile?: string; local?: LocalMode };

/** What `edgectl spool` reaches the agent with: with --admin, an HTTP client (by default one of its own, closed after the command). */
export interface SpoolDeps {
  http?: HttpClient;
}

/** Runs `fn` against the node's admin API and always closes the connection (what every `edgectl spool` command does). */
export async function withAdmin<T>(f: AdminTarget, fn: (api: AdminApi) => Promise<T>, deps: SpoolDeps = {}): Promise<T> {
  const { api, close } = await openAdmin(f, deps);
  try {
    return await fn(api);
  } finally {
    await close();
  }
}

/**
 * Opens the admin API; the returned close() ends the SSH connection. `local`: the embedded
 * default (every node is a directory on this machine), so the node's loopback is this one's.
 */
async function openAdmin(f: AdminTarget, deps: SpoolDeps): Promise<{ api: AdminApi; close: () => Promise<void> }> {
  if (f.admin) {
    const http = deps.http ?? createHttpClient();
    return { api: adminByUrl(f.admin, http, f.adminTokenFile), close: async () => { if (!deps.http) await http.close(); } };
  }
  if (!f.node) throw new EdgectlError('EDGECTL_USAGE', 'give --node NAME (through SSH) or --admin URL (a local agent)');
  const { loadFleet } = await import('../fleet/load.js');
  const { resolvedNodes } = await import('../fleet/model.js');
  const { findNode } = await import('../nodes/select.js');
  const { createConnector } = await import('../transport/connect.js');
  const { localModel } = await import('../nodes/local-mode.js');
  const loaded = await loadFleet(f.fleet);
  const model = f.local ? localModel(loaded.model, f.local) : loaded.model;
  const node = findNode(resolvedNodes(model), f.node);
  const connector = createConnector({ model, fleetRoot: f.fleet, identity: f.identity, localRoot: f.local?.root });
  try {
    const api = adminByTransport(await connector.open(f.node), node.agent.listen);
    await isNode(api, f.node);
    return { api, close: () => connector.close() };
  } catch (e) {
    await connector.close();
    throw e;
  }
}

/** The agent that answered must be the node asked for: another node's agent on that port (or a stale one) would report its own spool. */
async function isNode(api: AdminApi, node: string): Promise<void> {
  const s = await spoolStatus(api, {});
  if (s.node !== node) {
    throw new EdgectlError('EDGECTL_AGENT_REFUSED', `the agent at ${api.where} is node ${JSON.stringify(s.node)}, not ${node}`, {
      hint: 'Another agent answers on this node\'s admin port: check the agent\'s --node and its admin address (in --local mode each node\'s agent has its own ports: `edgectl plan --local` shows them).',
    });
  }
}
