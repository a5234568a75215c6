import { request } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, signal } from '../helpers/lab-util.js';
import type { Lab } from '../helpers/hosts.js';

/** A real HTTP request to a node's nginx, with a Host header. */
export function get(address: string, port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, headers: { host, connection: 'close' }, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface TestApp {
  name: string;
  tenant?: string;
  domain: string;
  nodes: string[];
  html: string;
  healthCheck?: { path: string; expectStatus?: number };
}

/** A small fleet of edge nodes with static apps placed by node name. */
export async function writeTestFleet(dir: string, o: { nodes: string[]; apps: TestApp[]; nodeDocs?: string; fleetExtra?: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n${o.fleetExtra ?? ''}`);
  await writeFile(join(dir, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeFile(join(dir, 'nodes.yaml'), o.nodeDocs ?? o.nodes.map((n, i) => `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${n}, labels: { idx: "n${i}" } }\nspec: { role: edge, address: 192.0.2.${i + 1} }\n`).join('---\n'));
  await writeApps(dir, o.apps);
}

export async function writeApps(dir: string, apps: TestApp[]): Promise<void> {
  const docs = [];
  for (const a of apps) {
    await mkdir(join(dir, 'sites', a.name), { recursive: true });
    await writeFile(join(dir, 'sites', a.name, 'index.html'), a.html);
    const hc = a.healthCheck ? `\n  healthCheck: ${JSON.stringify(a.healthCheck)}` : '';
    docs.push(`apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${a.name} }\nspec:\n  tenant: ${a.tenant ?? 'acme'}\n  type: static\n  domains: [${a.domain}]\n  static: { path: sites/${a.name} }\n  placement: { nodes: [${a.nodes.join(', ')}] }${hc}\n`);
  }
  await writeFile(join(dir, 'apps.yaml'), docs.join('---\n'));
}

/** Stops every nginx whose pid file is under root/<node>/run (afterAll, even when a test failed). */
export async function killNginx(root: string): Promise<void> {
  let nodes: string[] = [];
  try {
    nodes = readdirSync(root);
  } catch {
    return;
  }
  const pids: number[] = [];
  for (const n of nodes) {
    const pid = nginxPid(root, n);
    if (pid && pid > 1) pids.push(pid);
  }
  for (const pid of pids) signal(pid, 'SIGTERM'); // fast shutdown: the master takes its workers with it
  for (let i = 0; i < 40 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
  for (const pid of pids.filter(alive)) signal(pid, 'SIGKILL');
}

/**
 * afterAll of a lab test: the nginx daemons first (they run inside the namespaces, from roots the
 * lab is about to delete), then the lab (sshd, namespaces), then the test's own directory.
 * Safe when beforeAll failed halfway (either may be undefined).
 */
export async function closeNginxLab(lab: Lab | undefined, dir: string | undefined): Promise<void> {
  for (const h of lab?.hosts ?? []) await killNginx(join(h.root, '..'));
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}

export function nginxPid(root: string, node: string): number | undefined {
  try {
    return Number(readFileSync(join(root, node, 'run', 'nginx.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}
