import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FarmNode } from './farm.js';

const run = promisify(execFile);

/**
 * The benchmark's fleet (edgectl/v1): one edge node per farm node, reached directly over SSH
 * as root with the bench key and its pinned host key; nginx on <address>:<httpPort>; a root
 * directory per node under `rootsDir`. Apps: two static sites (every node / half the nodes)
 * and six cached proxies placed on half the nodes each, so a node carries about five apps.
 * The directory is committed to a fresh git repo, as a real fleet repo would be.
 */
export interface BenchFleet {
  dir: string;
  roots: Map<string, string>;
  /** For each app: its first domain (Host header for the check that nginx serves it). */
  apps: { name: string; domain: string }[];
}

const SITE_FILES: Record<string, string> = {
  'index.html': '<!doctype html><title>shop</title><link rel="stylesheet" href="style.css"><h1>shop</h1><script src="app.js"></script>\n',
  'style.css': 'body { font-family: sans-serif; margin: 2rem; }\nh1 { color: #345; }\n',
  'app.js': 'document.title += " (edge)";\n',
};
const DOCS_FILES: Record<string, string> = {
  'index.html': '<!doctype html><title>docs</title><h1>docs</h1>\n',
  'guide.html': '<!doctype html><title>guide</title><p>guide</p>\n',
};

/** A relay in front of the edges: every edge gets `via: [name]`; the relay is reached at address:port (a WAN proxy, say). */
export interface BenchRelay {
  name: string;
  address: string;
  port: number;
  hostKey: string;
  /** Where the relay's own nginx listens (its farm address). */
  httpAddress: string;
}

export async function writeBenchFleet(dir: string, nodes: FarmNode[], opts: { rootsDir: string; httpPort: number; clientKey: string; relay?: BenchRelay }): Promise<BenchFleet> {
  await mkdir(path.join(dir, 'nodes'), { recursive: true });
  const half = Math.max(1, Math.ceil(nodes.length / 2));
  const fleet = `apiVersion: edgectl/v1
kind: Fleet
metadata: { name: bench }
spec:
  defaults:
    ssh: { user: root, port: 22, identityFile: ${opts.clientKey} }
    nginx: { workerProcesses: 1, workerConnections: 256 }
  hub: { url: "http://127.0.0.1:9/v1/forward" }
  rollout: { canary: 0, batchSize: "100%", maxFailures: 0 }
`;
  const tenants = ['shop', 'media']
    .map((t) => `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: ${t} }\nspec:\n  displayName: ${t} tenant\n`)
    .join('---\n');
  const apps: string[] = [
    `apiVersion: edgectl/v1
kind: App
metadata: { name: shop-www }
spec:
  tenant: shop
  type: static
  domains: [www.shop.bench.test, shop.bench.test]
  static: { path: sites/shop-www }
`,
    `apiVersion: edgectl/v1
kind: App
metadata: { name: media-docs }
spec:
  tenant: media
  type: static
  domains: [docs.media.bench.test]
  static: { path: sites/media-docs }
  placement: { replicas: ${half}, spreadBy: site }
`,
  ];
  const appList = [
    { name: 'shop-www', domain: 'www.shop.bench.test' },
    { name: 'media-docs', domain: 'docs.media.bench.test' },
  ];
  for (let k = 1; k <= 6; k++) {
    const tenant = k % 2 ? 'shop' : 'media';
    const name = `${tenant}-api${k}`;
    const domain = `api${k}.${tenant}.bench.test`;
    appList.push({ name, domain });
    apps.push(`apiVersion: edgectl/v1
kind: App
metadata: { name: ${name} }
spec:
  tenant: ${tenant}
  type: proxy
  domains: [${domain}]
  upstream: { urls: ["http://192.0.2.10:${8090 + k}"] }
  cache: { ttl: 5m, methods: [GET, HEAD], staleOnError: true }
  placement: { replicas: ${half}, spreadBy: site }
`);
  }

  const roots = new Map<string, string>();
  const nodeDocs = nodes.map((n) => {
    const root = path.join(opts.rootsDir, n.name);
    roots.set(n.name, root);
    return `apiVersion: edgectl/v1
kind: Node
metadata:
  name: ${n.name}
  labels: { region: r${n.index % 4}, site: s${n.index % 10} }
spec:
  role: edge
  address: ${n.address}
  ssh: { user: root, port: 22, identityFile: ${opts.clientKey}, hostKey: "${n.hostKey}" }
  root: ${root}
  http: { address: ${n.address}, port: ${opts.httpPort} }
  agent: { listen: "${n.address}:9000" }
${opts.relay ? `  via: [${opts.relay.name}]\n` : ''}`;
  });
  if (opts.relay) {
    const r = opts.relay;
    const root = path.join(opts.rootsDir, r.name);
    roots.set(r.name, root);
    nodeDocs.push(`apiVersion: edgectl/v1
kind: Node
metadata:
  name: ${r.name}
  labels: { region: r0, site: relay }
spec:
  role: relay
  address: ${r.address}
  ssh: { user: root, port: ${r.port}, identityFile: ${opts.clientKey}, hostKey: "${r.hostKey}" }
  root: ${root}
  http: { address: ${r.httpAddress}, port: ${opts.httpPort} }
  agent: { listen: "${r.httpAddress}:9000" }
`);
  }

  await writeFile(path.join(dir, 'fleet.yaml'), fleet);
  await writeFile(path.join(dir, 'tenants.yaml'), tenants);
  await writeFile(path.join(dir, 'apps.yaml'), apps.join('---\n'));
  await writeFile(path.join(dir, 'nodes', 'edges.yaml'), nodeDocs.join('---\n'));
  for (const [site, files] of [['shop-www', SITE_FILES], ['media-docs', DOCS_FILES]] as const) {
    await mkdir(path.join(dir, 'sites', site), { recursive: true });
    for (const [f, body] of Object.entries(files)) await writeFile(path.join(dir, 'sites', site, f), body);
  }
  const git = (...args: string[]) => run('git', ['-C', dir, '-c', 'user.name=bench', '-c', 'user.email=bench@localhost', ...args]);
  await git('init', '-q', '-b', 'main');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'bench fleet');
  return { dir, roots, apps: appList };
}

/** The one-app change: the shop site's index.html (on every edge node) gets a new version, committed. */
export async function changeShopSite(dir: string, version: string): Promise<void> {
  await writeFile(path.join(dir, 'sites', 'shop-www', 'index.html'), SITE_FILES['index.html'].replace('<h1>shop</h1>', `<h1>shop</h1><p>${version}</p>`));
  const git = (...args: string[]) => run('git', ['-C', dir, '-c', 'user.name=bench', '-c', 'user.email=bench@localhost', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', `shop site ${version}`);
}
