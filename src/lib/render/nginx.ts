import { EdgectlError } from '../errors.js';
import type { AppResource, ResolvedNode } from '../fleet/model.js';
import { durationSeconds } from '../fleet/values.js';
import { appId } from './context.js';
import { upstreamTarget, type UpstreamTarget } from './nginx-quote.js';
import type { Templates } from './templates.js';
import { defaultMaxBatchBytes, MAX_FORWARD_BODY_BYTES } from '../limits.js';
import type { AppTls, TlsView } from './tls.js';

/** Where nginx finds Kong's proxy on a node with kong: true. */
export const KONG_PROXY = '127.0.0.1:8000';
/** nginx.conf carries this until the config id is known (see configIdOf). */
export const CONFIG_ID_PLACEHOLDER = 'EDGECTL-CONFIG-ID-PLACEHOLDER';

export interface RenderedFile {
  path: string;
  data: Buffer;
}

/**
 * nginx files for one node. App fragments depend only on the app and a few node settings
 * (listen, root, agent), so at fleet scale they are rendered once and shared between nodes.
 */
export class NginxRenderer {
  private readonly fragments = new Map<string, RenderedFile>();
  private readonly locations = new Map<string, string>();
  private readonly confs = new Map<string, Buffer>();
  private readonly params: string;
  /** Which kinds of fleet snippet exist: nginx.conf and every app server include them. */
  private readonly snippets: { http: boolean; server: boolean };

  constructor(private readonly t: Templates) {
    this.params = t.render('nginx/fastcgi-params.conf.ejs', {});
    this.snippets = { http: t.snippets.some((f) => f.path.startsWith('nginx/http.d/')), server: t.snippets.some((f) => f.path.startsWith('nginx/server.d/')) };
  }

  /** nginx.conf (still with the placeholder, a shared Buffer) and the app fragments, in path order. */
  render(node: ResolvedNode, apps: AppResource[], tls: ReadonlyMap<string, AppTls> = new Map()): { conf: Buffer; fragments: RenderedFile[] } {
    const locations = this.locationsFor(node);
    const n = node.nginx;
    // The https port only matters to nodes with a TLS app: the others' nginx.conf stays as it was.
    const https = apps.some((a) => tls.has(a.name)) ? { port: node.https.port } : undefined;
    const key = `${node.role}|${node.http.address ?? ''}|${node.http.port}|${n.workerProcesses}|${n.workerConnections}|${apps.length > 0}|${locations}|${node.standIn ?? ""}|${https?.port ?? ''}`;
    let conf = this.confs.get(key);
    if (!conf) {
      const text = this.t.render('nginx/nginx.conf.ejs', { node, locations, configId: CONFIG_ID_PLACEHOLDER, hasApps: apps.length > 0, snippets: this.snippets, https });
      conf = Buffer.from(text);
      this.confs.set(key, conf);
    }
    const fragments = apps.map((a) => this.fragment(node, a, locations, tls.get(a.name)?.view)).sort((a, b) => (a.path < b.path ? -1 : 1));
    return { conf, fragments };
  }

  private locationsFor(node: ResolvedNode): string {
    const key = `${node.role}|${node.agent.listen}|${node.agent.maxMessageBytes}`;
    let text = this.locations.get(key);
    if (text === undefined) {
      // The agent's own limits: an NDJSON batch may exceed maxMessageBytes (the agent refuses a single
      // message over it), and every hop takes the largest forward batch any hop can send. Edges
      // are nobody's next hop, so they do not expose /v1/forward at all.
      const httpq = { queue: node.role !== 'core', forward: node.role !== 'edge', agent: node.agent.listen, maxBodyBytes: defaultMaxBatchBytes(node.agent.maxMessageBytes), maxForwardBytes: MAX_FORWARD_BODY_BYTES };
      text = this.t.render('nginx/locations.conf.ejs', { node: { role: node.role, agent: node.agent }, httpq });
      this.locations.set(key, text);
    }
    return text;
  }

  private fragment(node: ResolvedNode, app: AppResource, locations: string, tlsView?: TlsView): RenderedFile {
    // Everything the fragment depends on: the app, the node settings in its view, and the
    // locations (which depend on role and agent settings, already in the key).
    const key = `${app.name}\0${node.http.address ?? ''}\0${node.http.port}\0${tlsView ? node.https.port : ''}\0${node.root}\0${node.role}\0${node.kong}\0${node.agent.listen}\0${node.agent.maxMessageBytes}\0${node.standIn ?? ''}`;
    let f = this.fragments.get(key);
    if (!f) {
      const id = appId(app);
      // App templates see the node's settings, not its identity: the fragment is shared by every
      // node with the same settings, whatever its name.
      const view = { role: node.role, root: node.root, http: node.http, agent: node.agent, kong: node.kong };
      const tls = tlsView && { ...tlsView, port: node.https.port };
      const head = this.t.render('nginx/server-head.conf.ejs', { node: view, app: appView(app), locations, snippets: this.snippets, tls });
      let text = this.t.render(`nginx/app-${app.spec.type}.conf.ejs`, { node: view, id, head, ...typeData(node, app, id, this.params) });
      if (tls?.redirect) text += this.t.render('nginx/tls-redirect.conf.ejs', { node: view, app: appView(app), locations, tls });
      const path = `nginx/conf.d/${id}.conf`;
      f = { path, data: Buffer.from(text) };
      this.fragments.set(key, f);
    }
    return f;
  }
}

function appView(app: AppResource) {
  return { name: app.name, tenant: app.spec.tenant, type: app.spec.type, domains: app.spec.domains };
}

function typeData(node: ResolvedNode, app: AppResource, id: string, params: string): Record<string, unknown> {
  const s = app.spec;
  const view = appView(app);
  switch (s.type) {
    case 'static':
      return { app: view, root: `current/apps/${id}`, index: s.static?.index ?? 'index.html' };
    case 'fastcgi': {
      const index = s.fastcgi?.index ?? 'index.php';
      return { app: view, root: `current/apps/${id}`, index, php: index.endsWith('.php'), socket: fastcgiSocket(node, id), params };
    }
    case 'api':
      return { app: view, kong: KONG_PROXY };
    case 'proxy': {
      const upstream = upstreamView(app);
      // The embedded default: the node's own stand-in answers instead of the upstream (plain HTTP on a unix socket).
      return { app: view, upstream: node.standIn ? { ...upstream, scheme: 'http', path: '', targets: [], standIn: node.standIn } : upstream, cache: cacheView(app) };
    }
  }
}

export function fastcgiSocket(node: ResolvedNode, id: string): string {
  return `${node.root.replace(/\/+$/, '')}/run/fastcgi/${id}.sock`;
}

function upstreamView(app: AppResource) {
  const u = app.spec.upstream;
  if (!u) throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: a proxy app needs spec.upstream`);
  const targets: UpstreamTarget[] = u.urls.map(upstreamTarget);
  const { scheme, path } = targets[0];
  if (targets.some((t) => t.scheme !== scheme || t.path !== path)) {
    throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: all upstream URLs must have the same scheme and path (nginx balances one upstream group)`);
  }
  // proxy_pass replaces the location prefix "/" with the URL's path: it must end with "/" too.
  return { scheme, path: path ? path.replace(/\/?$/, '/') : '', targets, keepalive: u.keepalive ?? 16, connectTimeout: u.connectTimeout ?? '5s', readTimeout: u.readTimeout ?? '60s' };
}

function cacheView(app: AppResource) {
  const c = app.spec.cache;
  if (!c) return undefined;
  const methods = ['GET', 'HEAD', ...(c.methods ?? []).filter((m) => m === 'POST')];
  const ttl = c.ttl ?? '1m';
  const staleOnError = c.staleOnError ?? false;
  // Entries must outlive their TTL to be served stale; otherwise keep them a little past it.
  const inactive = staleOnError ? '7d' : durationSeconds(ttl) * 2 > 600 ? `${Math.ceil(durationSeconds(ttl) * 2)}s` : '10m';
  return { ttl, methods, post: methods.includes('POST'), staleOnError, inactive, maxBodyKb: c.maxBodyKb ?? 64 };
}
