import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { validateFleet } from '../../src/lib/fleet/validate.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles } from '../../src/lib/render/index.js';
import { checkBundles } from '../../src/lib/render/check.js';
import { dataTempDir } from '../helpers/data-dir.js';
import { freePorts } from '../helpers/ports.js';
import { TEST_VERSION, httpRequest } from './helpers.js';
import { stopProcess } from '../helpers/stop.js';

/**
 * IPv6 edges: listen addresses and upstreams in brackets, validated, rendered, accepted by
 * nginx -t and serving real traffic on [::1] (on free ports). A host named `unix` is refused:
 * nginx would read `unix:PORT` as a UNIX socket.
 */
/** The http port of the cases that only render: nothing binds it (nor the hub's port). */
const RENDER_PORT = 23480;
/** The live case's nginx port, a free one. */
let PORT: number;

function fleet(root: string, o: { http: string; agent: string; upstream: string; hub?: string; node?: string; port?: number }): Record<string, string> {
  return {
    'fleet.yaml': `apiVersion: edgectl/v1
kind: Fleet
metadata: { name: six }
spec:
  defaults:
    root: ${root}
    http: { address: "${o.http}", port: ${o.port ?? RENDER_PORT} }
    agent: { listen: "${o.agent}" }
  hub: { url: "${o.hub ?? 'http://[::1]:23488/v1/forward'}" }
${o.upstream.startsWith('http://[::1]') ? `  policy: { allowUpstreams: ["${new URL(o.upstream).host}"] }\n` : ''}`,
    'nodes.yaml': `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: six-edge }\nspec: { role: edge, address: "${o.node ?? '::1'}" }\n`,
    'tenants.yaml': 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: shop }\nspec:\n  uplink: { tokens: [{ name: dev, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 }] }\n',
    'apps.yaml': `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: shop-api }\nspec: { tenant: shop, type: proxy, domains: [api6.shop.example], upstream: { urls: ["${o.upstream}"] }, uplink: { topics: [events] } }\n`,
    'templates/nginx/server.d/headers.conf': 'add_header X-Edge-Snippet "from the fleet" always;\n',
  };
}

async function writeFleet(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

const get = (urlPath: string, method = 'GET', body?: string) => httpRequest({ addr: '::1', port: PORT }, method, 'api6.shop.example', urlPath, body);

describe('a host named unix, IPv6 addresses', () => {
  let tmp: Awaited<ReturnType<typeof dataTempDir>>;
  beforeAll(async () => {
    tmp = await dataTempDir('ipv6'); // the fleet names a root in it: below a data prefix
    await chmod(tmp.dir, 0o755); // nginx workers run as an unprivileged user
  });
  afterAll(() => tmp.cleanup());

  it('validate refuses `unix` wherever nginx would read it as a socket, and IPv6 without brackets or with a zone', async () => {
    // Upstreams off the node: an invalid Fleet document allows no loopback upstream (fail closed).
    const cases: [Parameters<typeof fleet>[1], string, RegExp][] = [
      [{ http: 'unix', agent: '[::1]:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.http.address', /"unix".*UNIX socket/],
      [{ http: '::1', agent: 'unix:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.agent.listen', /"unix".*UNIX socket/],
      [{ http: '::1', agent: '[::1]:7311', upstream: 'http://unix:8080/' }, 'spec.upstream.urls[0]', /"unix".*UNIX socket/],
      [{ http: '::1', agent: '::1:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.agent.listen', /IPv6 in brackets/],
      [{ http: 'fe80::1%eth0', agent: '[::1]:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.http.address', /IP address or a hostname/],
      // One spelling per address: host-key pins and own-node checks compare addresses as written.
      [{ http: '2001:db8:0::5', agent: '[::1]:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.http.address', /canonical form 2001:db8::5/],
      [{ http: '::1', agent: '[2001:DB8::1]:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.agent.listen', /canonical form 2001:db8::1/],
      [{ http: '::1', agent: '[::ffff:127.0.0.1]:7311', upstream: 'http://[2001:db8::1]:8080/' }, 'spec.defaults.agent.listen', /IPv4 address 127\.0\.0\.1 written inside IPv6: write 127\.0\.0\.1/],
      [{ http: '::1', agent: '[::1]:7311', upstream: 'http://[2001:db8::1]:8080/', node: '::ffff:203.0.113.7' }, 'spec.address', /IPv4 address 203\.0\.113\.7 written inside IPv6/],
      [{ http: '::1', agent: '[::1]:7311', upstream: 'http://[2001:db8::1]:8080/', node: '2001:0db8::7' }, 'spec.address', /canonical form 2001:db8::7/],
    ];
    for (const [o, field, message] of cases) {
      const dir = path.join(tmp.dir, `v-${cases.findIndex((c) => c[0] === o)}`);
      await writeFleet(dir, fleet('/srv/edgectl', o));
      const r = validateFleet(await readFleetSource(dir));
      expect(r.problems.map((p) => `${p.path} ${p.message}`), JSON.stringify(o)).toEqual([expect.stringMatching(new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')} .*${message.source}`))]);
    }
  });

  describe('live on [::1]', () => {
    let root: string;
    let nginx: ChildProcess | undefined;
    let upstream: http.Server | undefined;
    let agent: http.Server | undefined;
    const agentSeen: string[] = [];

    beforeAll(async () => {
      root = path.join(tmp.dir, 'node');
      const dir = path.join(tmp.dir, 'fleet');
      let UPSTREAM: number;
      let AGENT: number;
      [PORT, UPSTREAM, AGENT] = await freePorts(3, '::1');
      await writeFleet(dir, fleet(root, { http: '::1', port: PORT, agent: `[::1]:${AGENT}`, upstream: `http://[::1]:${UPSTREAM}/base` }));
      const bundles = await renderFleet(await loadFleet(dir), { edgectlVersion: TEST_VERSION });
      await writeBundles(bundles, path.join(root, 'releases'));
      const { results } = await checkBundles(path.join(root, 'releases'), ['six-edge']);
      expect(results, results.map((r) => r.output).join('\n')).toMatchObject([{ tool: 'nginx', ok: true }]);
      for (const d of ['log', 'run', 'cache', 'tmp']) await mkdir(path.join(root, d), { recursive: true });
      await symlink('releases/six-edge', path.join(root, 'current'));
      upstream = http.createServer((req, res) => res.end(JSON.stringify({ url: req.url, from: req.socket.remoteAddress })));
      agent = http.createServer((req, res) => {
        agentSeen.push(`${req.method} ${req.url}`);
        req.resume();
        req.on('end', () => res.writeHead(202).end('{"accepted":1}'));
      });
      await new Promise<void>((r) => upstream!.listen(UPSTREAM, '::1', r));
      await new Promise<void>((r) => agent!.listen(AGENT, '::1', r));
      nginx = spawn('nginx', ['-p', root + '/', '-c', path.join(root, 'current/nginx/nginx.conf'), '-e', path.join(root, 'log/error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        if (await get('/healthz').then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }, 60_000);

    afterAll(async () => {
      await stopProcess(nginx);
      await new Promise((r) => upstream?.close(r));
      await new Promise((r) => agent?.close(r));
    });

    it('nginx listens on [::1], proxies to an upstream on [::1] and to the agent on [::1], with the fleet\'s snippet', async () => {
      const r = await get('/x?y=1');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ url: '/base/x?y=1', from: '::1' });
      expect(r.headers['x-edge-snippet']).toBe('from the fleet');
      const q = await get('/v1/q/shop/events', 'POST', '{"n":1}\n');
      expect(q.status).toBe(202);
      expect(agentSeen).toEqual(['POST /v1/q/shop/events']);
    });
  });

  it('a global IPv6 listen address and upstream pass nginx -t (in a network namespace that has them)', async () => {
    const dir = path.join(tmp.dir, 'global');
    await writeFleet(dir, fleet('/srv/edgectl', { http: '2001:db8::1', agent: '[2001:db8::1]:7311', upstream: 'http://[2001:db8::2]:8080/', hub: 'http://[2001:db8::3]:7311/v1/forward' }));
    const [b] = await renderFleet(await loadFleet(dir), { edgectlVersion: TEST_VERSION });
    const conf = (p: string) => b.files.find((f) => f.path === p)!.data.toString();
    expect(conf('nginx/nginx.conf')).toContain('listen [2001:db8::1]:23480 default_server;');
    expect(conf('nginx/conf.d/shop.shop-api.conf')).toMatch(/server \[2001:db8::2\]:8080 max_fails=3[\s\S]*listen \[2001:db8::1\]:23480;[\s\S]*proxy_pass http:\/\/\[2001:db8::1\]:7311;/);
    const out = path.join(tmp.dir, 'global-out');
    await writeBundles([b], out);
    const ns = `edgectl-v6-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'sh', '-c', 'ip link set lo up && ip -6 addr add 2001:db8::1/128 dev lo nodad && ip -6 addr add 2001:db8::2/128 dev lo nodad']);
      const wrapper = path.join(tmp.dir, 'nginx-in-netns');
      await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} nginx "$@"\n`, { mode: 0o755 });
      const { results } = await checkBundles(out, ['six-edge'], { nginx: wrapper });
      expect(results, results.map((r) => r.output).join('\n')).toMatchObject([{ tool: 'nginx', ok: true }]);
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
