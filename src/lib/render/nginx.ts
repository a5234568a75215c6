import { EdgectlError, FLEET_TEMPLATE_HINT } from '../errors.js';
import type { AppResource, ResolvedNode } from '../fleet/model.js';
import { durationSeconds } from '../fleet/values.js';
import { appId } from './context.js';
import { assertNoForbiddenDirectives, upstreamTarget, type UpstreamTarget } from './nginx-quote.js';
import type { Templates } from './templates.js';
import { defaultMaxBatchBytes, MAX_FORWARD_BODY_BYTES } from '../agent/config.js';

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
  /** The built-in nginx.conf uses only the node settings in its cache key; a fleet's own may use anything. */
  private readonly confCacheable: boolean;

  constructor(private readonly t: Templates) {
    this.params = t.render('nginx/fastcgi-params.conf.ejs', {});
    this.confCacheable = !t.overridden.includes('templates/nginx/nginx.conf.ejs');
  }

  /** nginx.conf (still with the placeholder, a shared Buffer) and the app fragments, in path order. */
  render(node: ResolvedNode, apps: AppResource[]): { conf: Buffer; fragments: RenderedFile[] } {
    const locations = this.locationsFor(node);
    const n = node.nginx;
    const key = `${node.role}|${node.http.address ?? ''}|${node.http.port}|${n.workerProcesses}|${n.workerConnections}|${apps.length > 0}|${locations}`;
    let conf = this.confCacheable ? this.confs.get(key) : undefined;
    if (!conf) {
      const text = this.t.render('nginx/nginx.conf.ejs', { node, locations, configId: CONFIG_ID_PLACEHOLDER, hasApps: apps.length > 0 });
      if (!text.includes(CONFIG_ID_PLACEHOLDER)) {
        throw new EdgectlError('EDGECTL_RENDER', 'nginx/nginx.conf.ejs must render configId (GET /.edgectl/config serves it; apply checks it after a reload)', { hint: FLEET_TEMPLATE_HINT });
      }
      assertNoForbiddenDirectives('nginx/nginx.conf', text);
      conf = Buffer.from(text);
      if (this.confCacheable) this.confs.set(key, conf);
    }
    const fragments = apps.map((a) => this.fragment(node, a, locations)).sort((a, b) => (a.path < b.path ? -1 : 1));
    return { conf, fragments };
  }

  private locationsFor(node: ResolvedNode): string {
    const key = `${node.role}|${node.agent.listen}|${node.agent.maxMessageBytes}`;
    let text = this.locations.get(key);
    if (text === undefined) {
      // The agent's own limits: an NDJSON batch may exceed maxMessageBytes (the agent refuses a single
      // message over it), and every hop takes the largest forward batch any hop can send.
      const httpq = { queue: node.role !== 'core', agent: node.agent.listen, maxBodyBytes: defaultMaxBatchBytes(node.agent.maxMessageBytes), maxForwardBytes: MAX_FORWARD_BODY_BYTES };
      text = this.t.render('nginx/locations.conf.ejs', { node: { role: node.role, agent: node.agent }, httpq });
      this.locations.set(key, text);
    }
    return text;
  }

  private fragment(node: ResolvedNode, app: AppResource, locations: string): RenderedFile {
    // Everything the fragment depends on: the app, the node settings in its view, and the
    // locations (which depend on role and agent settings, already in the key).
    const key = `${app.name}\0${node.http.address ?? ''}\0${node.http.port}\0${node.root}\0${node.role}\0${node.kong}\0${node.agent.listen}\0${node.agent.maxMessageBytes}`;
    let f = this.fragments.get(key);
    if (!f) {
      const id = appId(app);
      // App templates see the node's settings, not its identity: the fragment is shared by every
      // node with the same settings, whatever its name.
      const view = { role: node.role, root: node.root, http: node.http, agent: node.agent, kong: node.kong };
      const head = this.t.render('nginx/server-head.conf.ejs', { node: view, app: appView(app), locations });
      const text = this.t.render(`nginx/app-${app.spec.type}.conf.ejs`, { node: view, id, head, ...typeData(node, app, id, this.params) });
      const path = `nginx/conf.d/${id}.conf`;
      assertNoForbiddenDirectives(path, text);
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
    case 'proxy':
      return { app: view, upstream: upstreamView(app), cache: cacheView(app) };
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
