import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { agentAdminAddress, agentAdminTokenFile, agentDataDir } from '../bundle/agent-json.js';
import { isEdgectlError } from '../errors.js';
import { unbracket } from '../fleet/ip.js';
import type { ResolvedNode } from '../fleet/model.js';
import { normaliseRoot } from '../release/layout.js';
import { nginxTargetOf } from '../release/nginx.js';
import { failureText, runScript } from '../release/remote.js';
import type { Transport } from '../transport/types.js';
import { fastcgiOf, jsonObject, isoTime, num, obj, spoolOfStatus, text, tunnelOf, versionOfStatus, word } from './agent-report.js';
import { assess } from './assess.js';
import { CONFIG_ID, parseNodeAnswer, RefusedAnswer, type NodeFacts } from './parse.js';
import { STATUS_SCRIPT } from './script.js';
import type { AgentInfo, NodeStatus } from './types.js';

/** How many commits HEAD is ahead of a commit (null: unknown). */
export type Behind = (commit: string | null) => Promise<number | null>;

export interface NodeContext {
  node: ResolvedNode;
  path: string;
  behind: Behind;
}

/** A row with nothing known but why: the node could not be reached, or its answer was refused. */
export function blankStatus(c: Pick<NodeContext, 'path'> & { node: Pick<ResolvedNode, 'name' | 'role'> }, o: { reachable: boolean; error: string; source?: 'live' | 'hub' }): Omit<NodeStatus, 'health' | 'problems'> {
  return {
    node: c.node.name, role: c.node.role, path: c.path, source: o.source ?? 'live', reachable: o.reachable, error: o.error, hint: null, lastSeen: null,
    release: { current: null, good: null, commit: null, goodCommit: null, behind: null },
    nginx: { up: false, pid: null, workers: null, configId: null, currentConfigId: null },
    agent: { state: 'unknown', version: null, uptimeSeconds: null, store: null, detail: null },
    spool: null, lastForward: null, fastcgi: null, tunnel: null, disk: null, load: null,
  };
}

export function unreachableStatus(c: Pick<NodeContext, 'node' | 'path'>, error: unknown): NodeStatus {
  const s = { ...blankStatus(c, { reachable: false, error: failureText(error) }), hint: isEdgectlError(error) ? error.hint : null };
  return { ...s, ...assess(s) };
}

/** The node's status in one exec over its open transport: the node's own facts and its agent's answers. */
export async function observeNode(t: Transport, c: NodeContext): Promise<NodeStatus> {
  const n = c.node;
  const root = normaliseRoot(n.root);
  const admin = agentAdminAddress(n.agent.listen);
  const host = admin ? unbracket(admin.host) : '127.0.0.1';
  // Only an address literal reaches the script (agentAdminAddress makes any other a loopback one).
  const safeHost = isIP(host) ? host : '127.0.0.1';
  const nonce = randomBytes(8).toString('hex');
  const ng = nginxTargetOf(n);
  const ngHost = isIP(ng.host) ? ng.host : '127.0.0.1';
  const urlHost = (h: string) => (isIP(h) === 6 ? `[${h}]` : h);
  const args = [root, safeHost, urlHost(safeHost), String(admin?.port ?? 0), agentAdminTokenFile(agentDataDir(root)), nonce, ngHost, urlHost(ngHost), String(ng.port)];
  const r = await runScript(t, STATUS_SCRIPT, args, { timeoutMs: 30_000 });
  let facts: NodeFacts;
  try {
    if (r.code !== 0) throw new RefusedAnswer(`the status script exited ${r.code}: ${r.stderr.trim().slice(0, 200)}`);
    facts = parseNodeAnswer(r.stdout, nonce);
  } catch (e) {
    if (!(e instanceof RefusedAnswer)) throw e;
    const s = blankStatus(c, { reachable: true, error: e.message });
    return { ...s, ...assess(s, { refused: true }) };
  }
  return statusOfFacts(facts, c, await c.behind(facts.current ? facts.commits.get(facts.current) ?? null : null));
}

/** Facts and the agent's answers as a row. Pure (`now` for the certificates' days to expiry). */
export function statusOfFacts(f: NodeFacts, c: Pick<NodeContext, 'node' | 'path'>, behind: number | null, now = Date.now()): NodeStatus {
  const base = blankStatus(c, { reachable: true, error: '' });
  const health = f.http.get('healthz');
  const hz = health ? jsonObject(health.body) : undefined;
  const st = f.http.get('status');
  let status = st?.status === 200 ? jsonObject(st.body) : undefined;
  const agent = agentInfo(f, hz, health?.status, status, st?.status);
  // Another node's agent on this port (a stale one, a copied config) would report its own spool.
  const other = status ? text(status.node) : null;
  if (status && other !== c.node.name) {
    Object.assign(agent, { state: 'down', detail: `the agent on its admin port is node ${JSON.stringify(other)}`, version: f.agentInstalled, uptimeSeconds: null });
    status = undefined;
  }
  const s: Omit<NodeStatus, 'health' | 'problems'> = {
    ...base,
    error: null,
    release: {
      current: f.current, good: f.good,
      commit: f.current ? f.commits.get(f.current) ?? null : null,
      goodCommit: f.good ? f.commits.get(f.good) ?? null : null,
      behind,
    },
    nginx: { up: f.nginxPid !== null, pid: f.nginxPid, workers: f.workers, configId: servedConfig(f), currentConfigId: f.wantConfig },
    agent,
    spool: status ? spoolOfStatus(status) : null,
    lastForward: status ? isoTime(obj(status.forward)?.lastSuccessAt) : null,
    fastcgi: status?.fastcgi !== undefined ? fastcgiOf(status.fastcgi) : hz?.fastcgi !== undefined ? fastcgiOf(hz.fastcgi) : null,
    tunnel: status ? tunnelOf(status.tunnel) : null,
    disk: f.disk,
    load: f.load,
    ...(f.certs.size ? { certs: [...f.certs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([app, notAfter]) => ({ app, notAfter, days: Math.floor((Date.parse(notAfter) - now) / 86_400_000) })) } : {}),
  };
  return { ...s, ...assess(s) };
}

/** The config id nginx answered GET /.edgectl/config with (its first line), when it is one. */
function servedConfig(f: NodeFacts): string | null {
  const a = f.http.get('config');
  const id = a?.status === 200 ? a.body.split(/\r?\n/)[0].trim() : '';
  return CONFIG_ID.test(id) ? id : null;
}

function agentInfo(f: NodeFacts, hz: Record<string, unknown> | undefined, hzCode: number | undefined, status: Record<string, unknown> | undefined, stCode: number | undefined): AgentInfo {
  const version = (status && versionOfStatus(status)) ?? f.agentInstalled;
  const a: AgentInfo = { state: 'up', version, uptimeSeconds: status ? num(status.uptimeSeconds) : null, store: word(hz?.store) ?? (status ? word(obj(status.store)?.state) : null), detail: null };
  if (f.agentUnknown) return { ...a, state: 'unknown', detail: 'the node has neither curl nor bash to ask it with' };
  // An agent never installed and never run (it makes its admin token at its first start) is not one that is down.
  if (f.token === 'missing' && !f.agentInstalled) return { ...a, state: 'none' };
  if (f.token !== 'ok') return { ...a, state: 'down', detail: `admin token ${f.token ?? 'unreadable'} on the node` };
  if (hzCode === undefined) return { ...a, state: 'down', detail: 'no answer on its admin port' };
  if (!hz || hz.ok !== true) return { ...a, state: 'down', detail: `/healthz answered ${hzCode}${hz ? '' : ' with no JSON'}` };
  if (!status) return { ...a, detail: `/status answered ${stCode ?? 'nothing'}${stCode === 200 ? ' with no JSON object' : ''}` };
  return a;
}
