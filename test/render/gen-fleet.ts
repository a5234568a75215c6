import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 as prng } from '../helpers/prng.js';

/**
 * A synthetic fleet for render's scale tests and benchmark. Deterministic (no clock, no
 * randomness beyond a seeded PRNG). Every app type appears; the first two apps have no
 * placement (every edge node runs them: a static site and a cached proxy); the others are
 * placed in one region with 3 replicas spread by site. Every 4th edge runs Kong.
 */
export interface GenOptions {
  edges: number;
  apps: number;
  tenants: number;
  seed?: number;
}


const ip = (base: number, i: number) => `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

export async function generateRenderFleet(dir: string, o: GenOptions): Promise<{ nodes: string[]; apps: string[] }> {
  const rand = prng(o.seed ?? 7);
  const regions = Array.from({ length: Math.max(2, Math.ceil(o.edges / 500)) }, (_, i) => `r${i + 1}`);
  const fleet = `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: gen }\nspec:\n  defaults:\n    root: /var/lib/edgectl\n  hub: { url: "https://hub.gen.example/v1/forward" }\n`;
  const nodes: string[] = [];
  const docs: string[] = [];
  docs.push(`apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: core-1, labels: { region: core } }\nspec: { role: core, address: 192.0.2.1 }\n`);
  nodes.push('core-1');
  regions.forEach((r, i) => {
    docs.push(`apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-${r}, labels: { region: ${r} } }\nspec: { role: relay, address: ${ip(172, i + 1)}, capacity: { cpu: 4 } }\n`);
    nodes.push(`relay-${r}`);
  });
  for (let i = 0; i < o.edges; i++) {
    const r = regions[i % regions.length];
    const name = `edge-${i + 1}`;
    nodes.push(name);
    const cpu = [1, 2, 4, 8][Math.floor(rand() * 4)];
    docs.push(`apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${name}, labels: { region: ${r}, site: ${r}-s${Math.floor(i / regions.length) % 10} } }\nspec: { role: edge, address: ${ip(10, i + 1)}, via: [relay-${r}], capacity: { cpu: ${cpu} }, kong: ${i % 4 === 0} }\n`);
  }
  const tenants: string[] = [];
  for (let t = 0; t < o.tenants; t++) {
    const name = `t${t + 1}`;
    const sha = createHash('sha256').update(`token-${name}`).digest('hex');
    const consumers = t % 2 === 0 ? `  consumers: [{ name: pos, keyEnv: T${t + 1}_POS_KEY }]\n` : '';
    tenants.push(`apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: ${name} }\nspec:\n  uplink: { tokens: [{ name: devices, sha256: ${sha} }] }\n  quota: { requestsPerSecond: ${100 + (t % 9) * 100}, spoolMb: ${32 + (t % 4) * 32} }\n${consumers}`);
  }
  const apps: string[] = [];
  const appDocs: string[] = [];
  const sites: string[] = [];
  const types = ['proxy', 'static', 'api', 'fastcgi'] as const;
  for (let a = 0; a < o.apps; a++) {
    const name = `app-${a + 1}`;
    apps.push(name);
    const tenant = `t${(a % o.tenants) + 1}`;
    const type = a === 0 ? 'static' : a === 1 ? 'proxy' : types[a % 4];
    const domain = `${name}.${tenant}.example`;
    let body = '';
    if (type === 'proxy') body = `  upstream: { urls: ["http://${ip(100, a + 1)}:8080", "http://${ip(101, a + 1)}:8080"], keepalive: 8 }\n  cache: { ttl: ${a % 2 ? '10m' : '30s'}, methods: [GET, HEAD${a % 3 === 0 ? ', POST' : ''}], staleOnError: ${a % 5 !== 0} }\n`;
    if (type === 'api') body = `  upstream: { urls: ["http://${ip(100, a + 1)}:9000"] }\n  routes: [{ paths: [/v1/items, /v1/orders], methods: [GET, POST] }]\n`;
    if (type === 'static') body = `  static: { path: sites/${name} }\n`;
    if (type === 'fastcgi') body = `  fastcgi: { path: sites/${name}, index: index.php }\n`;
    if (type === 'static' || type === 'fastcgi') sites.push(name);
    const r = type === 'api' ? regions[0] : regions[a % regions.length];
    const placement = a < 2 ? '' : `  placement: { selector: { region: ${r} }, replicas: 3, spreadBy: site }\n`;
    const uplink = a % 3 === 0 ? `  uplink: { topics: [events, { name: telemetry, whenFull: drop-oldest, ttl: 1d }] }\n` : '';
    appDocs.push(`apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  tenant: ${tenant}\n  type: ${type}\n  domains: [${domain}, www.${domain}]\n${body}${placement}${uplink}`);
  }
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    ['fleet.yaml', fleet],
    ['nodes.yaml', docs.join('---\n')],
    ['tenants.yaml', tenants.join('---\n')],
    ['apps.yaml', appDocs.join('---\n')],
  ];
  for (const s of sites) {
    files.push([`sites/${s}/index.html`, `<h1>${s}</h1>\n`]);
    files.push([`sites/${s}/index.php`, `<?php echo "${s}";\n`]);
  }
  for (const [rel, text] of files) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
  return { nodes, apps };
}
