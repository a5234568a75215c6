import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles, type Bundle } from '../../src/lib/render/index.js';
import { dataTempDir } from '../helpers/data-dir.js';
import { freePorts } from '../helpers/ports.js';
import { TEST_VERSION, httpRequest, type Answer } from './helpers.js';
import { stopProcess } from '../helpers/stop.js';

/**
 * Real nginx serving a rendered bundle on loopback (127.0.3.1, on free ports), with a small
 * Node upstream and a stand-in agent beside it. The release layout is the node's: <root>/current
 * is a symlink to the release, nginx runs with -p <root>/.
 */
const ADDR = '127.0.3.1';
// Free ports, found before the fleet is written; the hub's is never contacted (the agent is a stand-in).
let NGINX_PORT: number;
let UPSTREAM_PORT: number;
let AGENT_PORT: number;
let HUB_PORT: number;

function request(method: string, host: string, urlPath: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return httpRequest({ addr: ADDR, port: NGINX_PORT }, method, host, urlPath, body, headers);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fleetFiles(root: string): Record<string, string> {
  return {
    'fleet.yaml': `apiVersion: edgectl/v1
kind: Fleet
metadata: { name: live }
spec:
  defaults:
    root: ${root}
    http: { address: "${ADDR}", port: ${NGINX_PORT} }
    agent: { listen: "${ADDR}:${AGENT_PORT}", maxMessageBytes: 4096 }
  # The test's upstream runs on the node's own loopback address: only the operator can allow that.
  policy: { allowUpstreams: ["${ADDR}:${UPSTREAM_PORT}"] }
  hub: { url: "http://${ADDR}:${HUB_PORT}/v1/forward" }
`,
    'nodes.yaml': `apiVersion: edgectl/v1
kind: Node
metadata: { name: live-edge, labels: { site: lab } }
spec: { role: edge, address: ${ADDR} }
`,
    'tenants.yaml': `apiVersion: edgectl/v1
kind: Tenant
metadata: { name: shop }
spec:
  uplink: { tokens: [{ name: dev, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 }] }
`,
    'apps.yaml': `apiVersion: edgectl/v1
kind: App
metadata: { name: shop-www }
spec: { tenant: shop, type: static, domains: [www.shop.example], static: { path: sites/www } }
---
apiVersion: edgectl/v1
kind: App
metadata: { name: shop-api }
spec:
  tenant: shop
  type: proxy
  domains: [api.shop.example]
  upstream: { urls: ["http://${ADDR}:${UPSTREAM_PORT}"] }
  cache: { ttl: 2s, methods: [GET, HEAD, POST], staleOnError: true, maxBodyKb: 8 }
  uplink: { topics: [events] }
---
apiVersion: edgectl/v1
kind: App
metadata: { name: shop-plain }
spec:
  tenant: shop
  type: proxy
  domains: ["*.plain.shop.example"]
  upstream: { urls: ["http://${ADDR}:${UPSTREAM_PORT}/base"] }
---
apiVersion: edgectl/v1
kind: App
metadata: { name: shop-php }
spec: { tenant: shop, type: fastcgi, domains: [php.shop.example], fastcgi: { path: sites/php } }
`,
    'sites/www/index.html': '<h1>shop www</h1>\n',
    'sites/www/app.css': 'h1 { color: red }\n',
    'sites/php/index.php': '<?php echo "php";\n',
  };
}

describe('live: nginx runs a rendered bundle', () => {
  let tmp: Awaited<ReturnType<typeof dataTempDir>>;
  let root: string;
  let bundle: Bundle;
  let nginx: ChildProcess | undefined;
  let upstream: http.Server | undefined;
  let agent: http.Server | undefined;
  let upstreamHits = 0;
  const agentSeen: { method: string; url: string; body: string; host?: string }[] = [];

  beforeAll(async () => {
    tmp = await dataTempDir('live'); // the fleet names a root in it: below a data prefix
    await chmod(tmp.dir, 0o755); // nginx workers run as an unprivileged user
    root = path.join(tmp.dir, 'node');
    [NGINX_PORT, UPSTREAM_PORT, AGENT_PORT, HUB_PORT] = await freePorts(4, ADDR);
    const fleet = path.join(tmp.dir, 'fleet');
    for (const [rel, text] of Object.entries(fleetFiles(root))) {
      await mkdir(path.dirname(path.join(fleet, rel)), { recursive: true });
      await writeFile(path.join(fleet, rel), text);
    }
    [bundle] = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION });
    await writeBundles([bundle], path.join(root, 'releases'));
    for (const d of ['log', 'run', 'cache', 'tmp']) await mkdir(path.join(root, d), { recursive: true });
    await symlink('releases/live-edge', path.join(root, 'current'));

    upstream = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        upstreamHits++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString(), n: upstreamHits }));
      });
    });
    agent = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        agentSeen.push({ method: req.method!, url: req.url!, body: Buffer.concat(chunks).toString(), host: req.headers.host });
        res.statusCode = 202;
        res.end('{"accepted":1}');
      });
    });
    await new Promise<void>((r) => upstream!.listen(UPSTREAM_PORT, ADDR, r));
    await new Promise<void>((r) => agent!.listen(AGENT_PORT, ADDR, r));
    nginx = spawn('nginx', ['-p', root + '/', '-c', path.join(root, 'current/nginx/nginx.conf'), '-e', path.join(root, 'log/error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    nginx.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 100; i++) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      const ok = await request('GET', 'unknown.example', '/healthz').then((a) => a.status === 200, () => false);
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`nginx did not start: ${stderr}`);
  });

  afterAll(async () => {
    await stopProcess(nginx);
    await new Promise((r) => (upstream?.listening ? upstream.close(r) : r(undefined)));
    await new Promise((r) => (agent?.listening ? agent.close(r) : r(undefined)));
    await tmp?.cleanup();
  });

  it('serves each app by its Host: static files, proxy, FastCGI socket', async () => {
    const www = await request('GET', 'www.shop.example', '/');
    expect(www.status).toBe(200);
    expect(www.body).toBe('<h1>shop www</h1>\n');
    expect(www.headers['cache-control']).toBe('max-age=600');
    const css = await request('GET', 'www.shop.example', '/app.css');
    expect(css.headers['content-type']).toBe('text/css');
    expect(css.headers['cache-control']).toBe('max-age=604800');
    expect((await request('GET', 'www.shop.example', '/missing.html')).status).toBe(404);

    const plain = await request('GET', 'eu.plain.shop.example', '/x?y=1');
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.body)).toMatchObject({ method: 'GET', url: '/base/x?y=1', host: 'eu.plain.shop.example' });
    expect(plain.headers['x-cache-status']).toBeUndefined();

    // No FastCGI server runs here: nginx tries the app's socket under the node root and says 502.
    expect((await request('GET', 'php.shop.example', '/')).status).toBe(502);
    const errors = await readFile(path.join(root, 'log/error.log'), 'utf8');
    expect(errors).toContain(`unix:${root}/run/fastcgi/shop.shop-php.sock`);
    expect((await request('GET', 'nothing.example', '/')).status).toBe(404);
  });

  it('answers /healthz per app and /.edgectl/config with the manifest\'s config id on any Host', async () => {
    for (const [host, app] of [['www.shop.example', 'shop-www'], ['api.shop.example', 'shop-api'], ['a.plain.shop.example', 'shop-plain'], ['php.shop.example', 'shop-php']]) {
      const h = await request('GET', host, '/healthz');
      expect(h.status, host).toBe(200);
      expect(h.body).toBe(`ok shop/${app}\n`);
      expect((await request('GET', host, '/.edgectl/config')).body).toBe(`${bundle.manifest.nginxConfigId}\n`);
    }
    expect((await request('GET', '203.0.113.9', '/.edgectl/config')).body).toBe(`${bundle.manifest.nginxConfigId}\n`);
  });

  it('proxies HTTPQ to the agent, with the body limits the agent has (a batch may exceed maxMessageBytes)', async () => {
    const up = await request('POST', 'api.shop.example', '/v1/q/events', '{"t":1}', { 'content-type': 'application/json' });
    expect(up.status).toBe(202);
    // An edge is nobody's next hop: nginx does not pass /v1/forward on (relays and the hub do).
    const fwd = await request('POST', '198.51.100.1', '/v1/forward', 'batch');
    expect(fwd.status).toBe(404);
    expect(agentSeen.slice(-1).map((s) => [s.method, s.url, s.body])).toEqual([['POST', '/v1/q/events', '{"t":1}']]);
    // maxMessageBytes is 4096 here: a 6 KB NDJSON batch still reaches the agent, which alone
    // knows a batch from a single message; nginx stops what no agent would take (8 MiB).
    const batch = '{"v":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}\n'.repeat(100);
    expect(batch.length).toBeGreaterThan(4096);
    expect((await request('POST', 'api.shop.example', '/v1/q/events', batch, { 'content-type': 'application/x-ndjson' })).status).toBe(202);
    expect(agentSeen[agentSeen.length - 1].body).toBe(batch);
    expect((await request('POST', 'api.shop.example', '/v1/q/events', Buffer.alloc((8 << 20) + 1, 97))).status).toBe(413);
  });

  it('caches GET and POST (method, host, URI and body in the key), then serves stale when the upstream is down', async () => {
    const get1 = await request('GET', 'api.shop.example', '/items?page=1');
    const get2 = await request('GET', 'api.shop.example', '/items?page=1');
    expect(get1.headers['x-cache-status']).toBe('MISS');
    expect(get2.headers['x-cache-status']).toBe('HIT');
    expect(get2.body).toBe(get1.body);

    const hitsBefore = upstreamHits;
    const post1 = await request('POST', 'api.shop.example', '/quote', '{"sku":"a"}');
    const post2 = await request('POST', 'api.shop.example', '/quote', '{"sku":"a"}');
    const post3 = await request('POST', 'api.shop.example', '/quote', '{"sku":"b"}');
    expect([post1, post2, post3].map((p) => p.headers['x-cache-status'])).toEqual(['MISS', 'HIT', 'MISS']);
    expect(JSON.parse(post2.body)).toMatchObject({ method: 'POST', body: '{"sku":"a"}' });
    expect(JSON.parse(post3.body)).toMatchObject({ body: '{"sku":"b"}' });
    expect(upstreamHits - hitsBefore).toBe(2);
    // A GET to the same URI is a different entry from the POST.
    expect((await request('GET', 'api.shop.example', '/quote')).headers['x-cache-status']).toBe('MISS');
    // A body larger than the in-memory buffer (maxBodyKb: 8) is not in the key: never cached.
    const big = 'x'.repeat(12 * 1024);
    const big1 = await request('POST', 'api.shop.example', '/quote', big);
    const big2 = await request('POST', 'api.shop.example', '/quote', big);
    expect(big1.status).toBe(200);
    expect(big2.headers['x-cache-status']).toBe('BYPASS');
    expect(JSON.parse(big2.body).body).toHaveLength(big.length);

    const closed = new Promise((r) => upstream!.close(r));
    upstream!.closeAllConnections();
    await closed;
    // Past the 2s TTL: nginx counts validity in whole seconds, so an entry can live up to 3s.
    await sleep(3500);
    const stale = await request('GET', 'api.shop.example', '/items?page=1');
    expect(stale.status).toBe(200);
    expect(stale.headers['x-cache-status']).toBe('STALE');
    expect(stale.body).toBe(get1.body);
    const stalePost = await request('POST', 'api.shop.example', '/quote', '{"sku":"a"}');
    expect(stalePost.headers['x-cache-status']).toBe('STALE');
    expect(stalePost.body).toBe(post1.body);
    // Something never cached has nothing to fall back on.
    expect((await request('GET', 'api.shop.example', '/never-seen')).status).toBe(502);
  });

  it('logs one JSON object per request with tenant and app', async () => {
    await request('GET', 'www.shop.example', '/?log-marker=1');
    await sleep(200);
    const lines = (await readFile(path.join(root, 'log/access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const mine = lines.find((l) => l.uri === '/?log-marker=1');
    expect(mine).toMatchObject({ tenant: 'shop', app: 'shop-www', host: 'www.shop.example', method: 'GET', status: 200 });
    expect(lines.some((l) => l.app === 'shop-api' && l.cache === 'HIT')).toBe(true);
  });
});
