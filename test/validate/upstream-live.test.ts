import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles } from '../../src/lib/render/index.js';
import { killAll, startAgent } from '../agent/helpers.js';
import { dataTempDir } from '../helpers/data-dir.js';
import { freePort, freePortRange } from '../helpers/ports.js';
import { cliSync } from '../helpers/cli.js';
import { stopProcess } from '../helpers/stop.js';

/**
 * What the review proved, on real parts: a real agent on 127.0.0.1 (its admin API on the next
 * port) and a tenant's proxy app pointed at that admin API. `edgectl validate` refuses it. Only
 * when the fleet's operator allows that exact host:port does the fleet validate, and then real
 * nginx carries a stranger's request for the tenant's domain to the agent's admin API: which
 * is what the refusal stands between.
 */
const NODE_ADDR = '127.0.4.1';
// Free ports, found in beforeAll: the node's nginx, and the agent's listen port with its admin API on the next one.
let HTTP_PORT: number;
let AGENT_PORT: number;
let ADMIN_PORT: number;

function get(host: string, port: number, urlPath: string, hostHeader?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: urlPath, agent: false, timeout: 10_000, headers: hostHeader ? { host: hostHeader } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function fleetFiles(root: string, upstream: string, policy: string): Record<string, string> {
  return {
    'fleet.yaml': `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: up-live }\nspec:\n  defaults:\n    root: ${root}\n    http: { address: "${NODE_ADDR}", port: ${HTTP_PORT} }\n    agent: { listen: "127.0.0.1:${AGENT_PORT}" }\n${policy}  hub: { url: "http://127.0.0.1:9/v1/forward" }\n`,
    'nodes.yaml': `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: up-edge }\nspec: { role: edge, address: ${NODE_ADDR} }\n`,
    'tenants.yaml': 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: shop }\n',
    'apps.yaml': `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: shop-admin }\nspec:\n  tenant: shop\n  type: proxy\n  domains: [admin.shop.example]\n  upstream: { urls: ["${upstream}"] }\n`,
  };
}

async function writeFleet(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) await writeFile(path.join(dir, rel), text);
}

describe('live: a tenant\'s proxy app aimed at the agent\'s admin API', { timeout: 180_000 }, () => {
  let tmp: string;
  let nginx: ChildProcess | undefined;

  beforeAll(async () => {
    tmp = (await dataTempDir('uplive')).dir; // the fleet names a root in it: below a data prefix
    await chmod(tmp, 0o755); // nginx workers run as an unprivileged user
    HTTP_PORT = await freePort(NODE_ADDR);
    AGENT_PORT = await freePortRange(2);
    ADMIN_PORT = AGENT_PORT + 1;
    await startAgent('up-edge', AGENT_PORT, ADMIN_PORT, ['--role', 'edge', '--data', path.join(tmp, 'spool'), '--upstream', 'http://127.0.0.1:9/v1/forward', '--heartbeat-seconds', '0']);
  });

  afterAll(async () => {
    await stopProcess(nginx);
    await killAll();
    await rm(tmp, { recursive: true, force: true });
  });

  it('validate refuses it in every form: loopback, the node\'s own address, the admin port on any host', async () => {
    // The target is real: the agent answers there (refusing a caller without its admin token).
    expect((await get('127.0.0.1', ADMIN_PORT, '/healthz')).status).toBe(401);
    const cases: [string, string][] = [
      [`http://127.0.0.1:${ADMIN_PORT}`, 'upstream-internal'],
      [`http://${NODE_ADDR}:${ADMIN_PORT}`, 'upstream-internal'],
      [`http://localhost:${AGENT_PORT}`, 'upstream-internal'],
      [`http://198.51.100.7:${ADMIN_PORT}`, 'upstream-reserved-port'],
    ];
    for (const [i, [url, rule]] of cases.entries()) {
      const dir = path.join(tmp, `refused-${i}`);
      await writeFleet(dir, fleetFiles(path.join(tmp, 'node'), url, ''));
      const r = cliSync(['validate', '--fleet', dir, '--json']);
      expect(r.code, url).toBe(1);
      expect(JSON.parse(r.stdout).problems.filter((p: { severity: string }) => p.severity === 'error'), url).toMatchObject([{ rule, file: 'apps.yaml', path: 'spec.upstream.urls[0]' }]);
    }
  });

  it('allowed by the operator, the fleet validates, and nginx then takes a request for the tenant\'s domain to the admin API', async () => {
    const root = path.join(tmp, 'node');
    const dir = path.join(tmp, 'allowed');
    await writeFleet(dir, fleetFiles(root, `http://127.0.0.1:${ADMIN_PORT}`, `  policy: { allowUpstreams: ["127.0.0.1:${ADMIN_PORT}"] }\n`));
    expect(cliSync(['validate', '--fleet', dir]).code).toBe(0);
    const [bundle] = await renderFleet(await loadFleet(dir), { edgectlVersion: '0.0.0-test' });
    await writeBundles([bundle], path.join(root, 'releases'));
    for (const d of ['log', 'run', 'cache', 'tmp']) await mkdir(path.join(root, d), { recursive: true });
    await symlink('releases/up-edge', path.join(root, 'current'));
    nginx = spawn('nginx', ['-p', root + '/', '-c', path.join(root, 'current/nginx/nginx.conf'), '-e', path.join(root, 'log/error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    nginx.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; ; i++) {
      if (nginx.exitCode !== null || i > 100) throw new Error(`nginx did not start: ${stderr}`);
      if (await get(NODE_ADDR, HTTP_PORT, '/healthz', 'unknown.example').then((a) => a.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const direct = await get('127.0.0.1', ADMIN_PORT, '/v1/spool');
    const through = await get(NODE_ADDR, HTTP_PORT, '/v1/spool', 'admin.shop.example');
    // nginx really carries the tenant's request to the admin API, which is why validate refuses
    // it; the admin API's token is the second line: it refuses the request as it refuses a direct one.
    expect(direct.status).toBe(401);
    expect([through.status, through.body]).toEqual([direct.status, direct.body]);
    expect(JSON.parse(through.body)).toMatchObject({ error: 'unauthorized' });
  });
});
