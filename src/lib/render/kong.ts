import type { AppResource, TenantResource } from '../fleet/model.js';
import { durationSeconds } from '../fleet/values.js';
import { EdgectlError } from '../errors.js';
import { appId } from './context.js';
import { upstreamTarget } from './nginx-quote.js';
import type { Templates } from './templates.js';
import { uuidv5 } from './uuid.js';

/** kong.yml depends only on the api apps placed on the node: nodes with the same ones share it. */
export class KongRenderer {
  private readonly files = new Map<string, Buffer>();

  constructor(private readonly t: Templates, private readonly tenants: Map<string, TenantResource>) {}

  render(apiApps: AppResource[]): Buffer {
    const key = apiApps.map((a) => a.name).join('|');
    let f = this.files.get(key);
    if (!f) this.files.set(key, (f = Buffer.from(renderKong(this.t, apiApps, this.tenants))));
    return f;
  }
}

/**
 * Kong declarative config (DB-less, decK file format 3.0) for one node: a service and routes per
 * api app placed there, the tenant's quota as a rate-limiting plugin, and the tenant's consumers
 * with key-auth keys as env vault references. Every entity carries the tags edgectl,
 * tenant:<name>, app:<name> (decK's select-tags) and a UUIDv5 id derived from its names.
 */
export function renderKong(t: Templates, apps: AppResource[], tenants: Map<string, TenantResource>): string {
  const upstreams = [];
  const services = [];
  const tenantNames = new Set<string>();
  for (const app of apps) {
    const s = app.spec;
    const tenant = tenants.get(s.tenant);
    tenantNames.add(s.tenant);
    const id = appId(app);
    const tags = ['edgectl', `tenant:${s.tenant}`, `app:${app.name}`];
    const targets = (s.upstream?.urls ?? []).map(upstreamTarget);
    if (targets.length === 0) throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: an api app needs spec.upstream`);
    const first = targets[0];
    const port = Number(first.server.slice(first.server.lastIndexOf(':') + 1));
    // Always through an upstream entity named by edgectl: Kong takes a service host that names an
    // upstream for that upstream, so a tenant's URL host must never be a service host (tenant A
    // writing http://b.app.upstream would get tenant B's targets).
    const serviceHost = `${id}.upstream`;
    upstreams.push({
      name: serviceHost,
      id: uuidv5(`upstream:${id}`),
      tags,
      targets: targets.map((x) => ({ target: x.server, id: uuidv5(`target:${id}:${x.server}`) })),
    });
    const plugins = [];
    const consumers = tenant?.spec.consumers ?? [];
    if (consumers.length > 0) {
      plugins.push({ name: 'key-auth', id: uuidv5(`plugin:${id}:key-auth`), config: { key_names: ['apikey'], hide_credentials: true } });
      plugins.push({ name: 'acl', id: uuidv5(`plugin:${id}:acl`), config: { allow: [`tenant-${s.tenant}`], hide_groups_header: true } });
    }
    const rps = tenant?.spec.quota?.requestsPerSecond;
    if (rps !== undefined) {
      plugins.push({ name: 'rate-limiting', id: uuidv5(`plugin:${id}:rate-limiting`), config: { second: rps, policy: 'local', limit_by: 'service', fault_tolerant: true } });
    }
    services.push({
      name: id,
      id: uuidv5(`service:${id}`),
      protocol: first.scheme,
      host: serviceHost,
      port,
      path: first.path || undefined,
      connectTimeoutMs: ms(s.upstream?.connectTimeout ?? '5s'),
      readTimeoutMs: ms(s.upstream?.readTimeout ?? '60s'),
      tags,
      routes: (s.routes ?? []).map((r, i) => ({
        name: `${id}.${i}`,
        id: uuidv5(`route:${id}:${i}`),
        hosts: s.domains,
        paths: r.paths,
        methods: r.methods ?? [],
        stripPath: r.stripPath ?? false,
      })),
      plugins,
    });
  }
  const consumers = [];
  for (const tn of [...tenantNames].sort()) {
    for (const c of tenants.get(tn)?.spec.consumers ?? []) {
      // "." never occurs in tenant or consumer names: one username per (tenant, consumer).
      const username = `${tn}.${c.name}`;
      consumers.push({
        username,
        id: uuidv5(`consumer:${username}`),
        tags: ['edgectl', `tenant:${tn}`],
        group: `tenant-${tn}`,
        aclId: uuidv5(`acl:${username}`),
        keyRef: vaultRef(c.keyEnv),
        keyId: uuidv5(`keyauth:${username}`),
      });
    }
  }
  consumers.sort((a, b) => (a.username < b.username ? -1 : 1));
  return t.render('kong/kong.yml.ejs', { services, upstreams, consumers });
}

/** Kong's env vault: `{vault://env/globex-pos-key}` reads GLOBEX_POS_KEY from Kong's environment. */
export function vaultRef(envName: string): string {
  if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(envName)) throw new EdgectlError('EDGECTL_RENDER', `"${envName}" is not an environment variable name`);
  return `{vault://env/${envName.toLowerCase().replaceAll('_', '-')}}`;
}

function ms(d: string): number {
  return Math.max(1, Math.round(durationSeconds(d) * 1000));
}
