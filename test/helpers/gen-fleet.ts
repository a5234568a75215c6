import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from './prng.js';

/**
 * Generates a large, valid, synthetic edgectl/v1 fleet repo for benchmarks and scale tests.
 * Deterministic: the same options always write the same bytes (a seeded PRNG, no clock).
 *
 * Shape: `regions` regions (2..50, about one per 500 edge nodes), two relays per region by
 * default, 10 sites and 3 ISPs per region; every edge node goes through its region's relay,
 * every 4th runs Kong, every 50th is behind NAT with a reverse tunnel. Apps cycle through
 * proxy, static, api, fastcgi and proxy again, each placed in one region with 2 replicas.
 * With `variety` (render's scale tests and benchmark), more of what render turns into config.
 */
export interface GenerateOptions {
  edges: number;
  apps: number;
  tenants: number;
  /** Relay nodes; default two per region. */
  relays?: number;
  /**
   * File layout: "each" writes one file per resource (nodes/<name>.yaml, like a real repo);
   * a number N writes N documents per file (nodes/nodes-0001.yaml ...). Default "each".
   */
  split?: 'each' | number;
  /** PRNG seed; default 1. */
  seed?: number;
  /**
   * More of what render turns into config: the first two apps on every edge node (a static
   * site and a cached proxy), proxies' cache methods (some with POST) and stale-on-error
   * varying, a www. domain per app, PHP index files, consumers on every other tenant and a
   * topic that drops its oldest messages. Off by default: the default fleet's bytes stay put.
   */
  variety?: boolean;
}

export interface GeneratedFleet {
  dir: string;
  files: number;
  nodes: number;
  regions: string[];
  edgeNames: string[];
  relayNames: string[];
  tenantNames: string[];
  appNames: string[];
}


const pad = (n: number, w: number) => String(n).padStart(w, '0');
const ISPS = ['unicom', 'telecom', 'mobile'];
const TYPES = ['proxy', 'static', 'api', 'fastcgi', 'proxy'] as const;

function ipOf(i: number, base: number): string {
  const n = base * 16_777_216 + i + 1;
  return `${Math.floor(n / 16_777_216) % 256}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

export async function generateFleet(dir: string, opts: GenerateOptions): Promise<GeneratedFleet> {
  const rand = mulberry32(opts.seed ?? 1);
  // Every node has a recorded credential, as after bootstrap (validate warns of one without).
  const credentialOf = (name: string) => createHash('sha256').update(`credential-of-${name}`).digest('hex');
  const nRegions = Math.max(2, Math.min(50, Math.ceil(opts.edges / 500)));
  const regions = Array.from({ length: nRegions }, (_, i) => `region-${pad(i + 1, 2)}`);
  const nRelays = Math.max(1, opts.relays ?? nRegions * 2);
  const w = String(Math.max(opts.edges, opts.apps, opts.tenants, nRelays)).length;
  const relayNames = Array.from({ length: nRelays }, (_, i) => `relay-${pad(i + 1, w)}`);
  const relayRegion = (r: number) => regions[r % nRegions];
  const relaysOf = regions.map((_, g) => relayNames.filter((_, r) => r % nRegions === g));
  const docs: Record<'fleet' | 'nodes' | 'tenants' | 'apps', { name: string; text: string }[]> = { fleet: [], nodes: [], tenants: [], apps: [] };

  docs.fleet.push({ name: 'fleet', text: `apiVersion: edgectl/v1
kind: Fleet
metadata: { name: synthetic }
spec:
  defaults:
    ssh: { user: edge, port: 22 }
    root: /var/lib/edgectl
    http: { port: 80 }
  hub: { url: "https://hub.synthetic.example/v1/forward" }
  rollout: { canary: 1, batchSize: "10%", maxFailures: 0 }
` });
  docs.nodes.push({ name: 'core-01', text: `apiVersion: edgectl/v1
kind: Node
metadata: { name: core-01, labels: { region: core, site: dc1 } }
spec:
  role: core
  address: 192.0.2.10
  capacity: { cpu: 16, memoryMb: 65536 }
` });
  relayNames.forEach((name, r) => {
    docs.nodes.push({ name, text: `apiVersion: edgectl/v1
kind: Node
metadata: { name: ${name}, labels: { region: ${relayRegion(r)}, site: ${relayRegion(r)}-idc } }
spec:
  role: relay
  address: ${ipOf(r, 172)}
  credential: { sha256: ${credentialOf(name)} }
  capacity: { cpu: 4, memoryMb: 8192 }
` });
  });
  const edgeNames: string[] = [];
  const tunnelPorts = new Map<string, number>();
  for (let i = 0; i < opts.edges; i++) {
    const g = i % nRegions;
    const region = regions[g];
    const rel = relaysOf[g].length ? relaysOf[g][Math.floor(i / nRegions) % relaysOf[g].length] : relayNames[i % nRelays];
    const name = `edge-${pad(i + 1, w)}`;
    edgeNames.push(name);
    const cpu = [1, 2, 4, 8][Math.floor(rand() * 4)];
    let extra = '';
    if (i % 50 === 49) {
      const p = (tunnelPorts.get(rel) ?? 2199) + 1;
      tunnelPorts.set(rel, p);
      extra = `  tunnel: reverse\n  tunnelPort: ${p}\n`;
    }
    docs.nodes.push({ name, text: `apiVersion: edgectl/v1
kind: Node
metadata:
  name: ${name}
  labels: { region: ${region}, site: ${region}-s${Math.floor(i / nRegions) % 10}, isp: ${ISPS[i % 3]} }
spec:
  role: edge
  address: ${ipOf(i, 10)}
  credential: { sha256: ${credentialOf(name)} }
  via: [${rel}]
${extra}  capacity: { cpu: ${cpu}, memoryMb: ${cpu * 1024} }
  kong: ${i % 4 === 0}
` });
  }
  const tenantNames = Array.from({ length: opts.tenants }, (_, t) => `tenant-${pad(t + 1, w)}`);
  for (const name of tenantNames) {
    const sha = createHash('sha256').update(`token-of-${name}`).digest('hex');
    docs.tenants.push({ name, text: `apiVersion: edgectl/v1
kind: Tenant
metadata: { name: ${name} }
spec:
  displayName: Synthetic tenant ${name}
  uplink:
    tokens:
      - { name: devices, sha256: ${sha} }
  quota: { requestsPerSecond: ${100 + Math.floor(rand() * 900)}, spoolMb: 64 }
${opts.variety && tenantNames.indexOf(name) % 2 === 0 ? `  consumers: [{ name: pos, keyEnv: ${name.toUpperCase().replace(/-/g, '_')}_POS_KEY }]\n` : ''}` });
  }
  const appNames: string[] = [];
  const sites: string[] = [];
  for (let a = 0; a < opts.apps; a++) {
    const name = `app-${pad(a + 1, w)}`;
    appNames.push(name);
    const tenant = tenantNames[a % Math.max(1, tenantNames.length)] ?? 'no-tenant';
    const everywhere = opts.variety && a < 2;
    const type = everywhere ? (a === 0 ? 'static' : 'proxy') : TYPES[a % TYPES.length];
    // api apps need Kong nodes: every 4th edge node, i.e. edges i ≡ 0 (mod 4). Their region
    // is i mod nRegions, so only regions reachable that way get api apps.
    const region = regions[type === 'api' ? (4 * a) % nRegions : a % nRegions];
    let body = '';
    const cache = opts.variety ? `{ ttl: ${a % 2 ? '10m' : '30s'}, methods: [GET, HEAD${a % 3 === 0 ? ', POST' : ''}], staleOnError: ${a % 5 !== 0} }` : '{ ttl: 10m, staleOnError: true }';
    if (type === 'proxy') body = `  upstream: { urls: ["http://${ipOf(a, 100)}:8080"] }\n  cache: ${cache}\n`;
    if (type === 'api') body = `  upstream: { urls: ["http://${ipOf(a, 100)}:9000"] }\n  routes:\n    - { paths: [/v1], methods: [GET, POST] }\n`;
    if (type === 'static') { body = `  static: { path: sites/${name} }\n`; sites.push(name); }
    if (type === 'fastcgi') { body = `  fastcgi: { path: sites/${name}, index: index.php, command: [php-cgi] }\n`; sites.push(name); }
    const uplink = a % 3 !== 0 ? '' : opts.variety ? '  uplink: { topics: [events, { name: telemetry, whenFull: drop-oldest, ttl: 1d }] }\n' : '  uplink: { topics: [events] }\n';
    const domain = `${name}.${tenant}.example`;
    docs.apps.push({ name, text: `apiVersion: edgectl/v1
kind: App
metadata: { name: ${name} }
spec:
  tenant: ${tenant}
  type: ${type}
  domains: [${opts.variety ? `${domain}, www.${domain}` : domain}]
${body}${everywhere ? '' : `  placement: { selector: { region: ${region} }, replicas: 2, spreadBy: site }\n`}${uplink}` });
  }

  const split = opts.split ?? 'each';
  let files = 0;
  await mkdir(dir, { recursive: true });
  const write = async (rel: string, text: string) => {
    const full = path.join(dir, rel);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, text);
    files++;
  };
  const writes: [string, string][] = [];
  for (const kind of ['fleet', 'nodes', 'tenants', 'apps'] as const) {
    const list = docs[kind];
    if (kind === 'fleet') writes.push(['fleet.yaml', list[0].text]);
    else if (split === 'each') for (const d of list) writes.push([`${kind}/${d.name}.yaml`, d.text]);
    else for (let i = 0; i < list.length; i += split) writes.push([`${kind}/${kind}-${pad(i / split + 1, 4)}.yaml`, list.slice(i, i + split).map((d) => d.text).join('---\n')]);
  }
  for (const s of sites) writes.push([`sites/${s}/index.html`, `<h1>${s}</h1>\n`]);
  if (opts.variety) for (const s of sites) writes.push([`sites/${s}/index.php`, `<?php echo "${s}";\n`]);
  // Bounded concurrency: tens of thousands of files, without running out of descriptors.
  for (let i = 0; i < writes.length; i += 256) await Promise.all(writes.slice(i, i + 256).map(([r, t]) => write(r, t)));
  return { dir, files, nodes: docs.nodes.length, regions, edgeNames, relayNames, tenantNames, appNames };
}
