import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles, manifestBytes, type Bundle } from '../../src/lib/render/index.js';
import { nginxConfigId } from '../../src/lib/render/bundle.js';
import { CONFIG_ID_PLACEHOLDER } from '../../src/lib/render/nginx.js';
import { agentConfigSchema } from '../../src/lib/bundle/agent-json.js';
import { bundleDigest, sha256Hex } from '../../src/lib/bundle/manifest.js';
import { REPO } from '../helpers/paths.js';
import { TEST_VERSION, copyExample, tempDir } from './helpers.js';
import { expectGoldenRender, listTree } from './golden.js';

const GOLDEN = path.join(REPO, 'test/golden/fleet.example');

describe('render fleet.example', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let fleetDir: string;
  let bundles: Bundle[];

  beforeAll(async () => {
    tmp = await tempDir('example');
    fleetDir = await copyExample(tmp.dir);
    bundles = await renderFleet(await loadFleet(fleetDir), { edgectlVersion: TEST_VERSION });
  });
  afterAll(() => tmp.cleanup());

  it('renders a bundle for every node: nginx everywhere, Kong on kong nodes, agent.json everywhere', () => {
    expect(bundles.map((b) => b.node)).toEqual(['bj-edge-01', 'bj-edge-02', 'bj-edge-03', 'bj-edge-04', 'bj-relay-01', 'dc-core-01', 'sh-edge-01', 'sh-edge-02', 'sh-edge-03', 'sh-relay-01']);
    for (const b of bundles) {
      const paths = b.files.map((f) => f.path);
      expect(paths).toEqual([...paths].sort());
      expect(paths).toContain('nginx/nginx.conf');
      expect(paths).toContain('nginx/mime.types');
      expect(paths).toContain('agent/agent.json');
      expect(paths.includes('kong/kong.yml')).toBe(['bj-edge-01', 'bj-edge-02', 'sh-edge-01'].includes(b.node));
      expect(paths).not.toContain('manifest.json');
    }
    const sh2 = bundles.find((b) => b.node === 'sh-edge-02')!;
    expect(sh2.files.map((f) => f.path)).toEqual(expect.arrayContaining(['apps/initech.initech-portal/index.php', 'apps/acme.acme-www/index.html', 'nginx/conf.d/initech.initech-portal.conf']));
  });

  it('matches the golden files, written as `edgectl render --out` writes them (UPDATE_GOLDEN=1 rewrites them)', async () => {
    await expectGoldenRender(fleetDir, path.join(tmp.dir, 'golden-out'), GOLDEN);
  });

  it('is deterministic: rendering twice gives identical digests and bytes', async () => {
    const again = await renderFleet(await loadFleet(fleetDir), { edgectlVersion: TEST_VERSION });
    expect(again.map((b) => b.manifest.digest)).toEqual(bundles.map((b) => b.manifest.digest));
    for (let i = 0; i < again.length; i++) {
      expect(manifestBytes(again[i].manifest).equals(manifestBytes(bundles[i].manifest))).toBe(true);
      again[i].files.forEach((f, j) => expect(f.data.equals(bundles[i].files[j].data), f.path).toBe(true));
    }
  });

  it('writes manifests whose hashes, sizes, modes and digest match the files', async () => {
    for (const b of bundles) {
      const m = b.manifest;
      expect(m.format).toBe('edgectl-bundle/v1');
      expect(m.edgectl).toBe(TEST_VERSION);
      expect(m.fleet).toEqual({ name: 'demo', commit: null, dirty: false });
      expect(Object.keys(m.files)).toEqual(b.files.map((f) => f.path));
      // Every file 0644 but a TLS key, 0600 (render/tls.ts).
      for (const f of b.files) expect(m.files[f.path]).toEqual({ sha256: sha256Hex(f.data), size: f.data.length, mode: f.path.endsWith('/key.pem') ? 0o600 : 0o644 });
      expect(m.digest).toBe(bundleDigest(m.files));
      // The config id: the nginx files with the placeholder back in nginx.conf.
      const conf = b.files.find((f) => f.path === 'nginx/nginx.conf')!;
      expect(conf.data.toString()).toContain(`default "${m.nginxConfigId}";`);
      const withPlaceholder = b.files.map((f) => (f === conf ? { ...f, data: Buffer.from(conf.data.toString().replace(m.nginxConfigId, CONFIG_ID_PLACEHOLDER)) } : f));
      expect(nginxConfigId(withPlaceholder)).toBe(m.nginxConfigId);
    }
    // Same id exactly when the nginx files are the same.
    const nginxFiles = (b: Bundle) => b.files.filter((f) => f.path.startsWith('nginx/')).map((f) => `${f.path}:${sha256Hex(f.data)}`).join(',');
    for (const a of bundles) for (const b of bundles) expect(a.manifest.nginxConfigId === b.manifest.nginxConfigId).toBe(nginxFiles(a) === nginxFiles(b));
    expect(new Set(bundles.map((b) => b.manifest.nginxConfigId)).size).toBeGreaterThan(5);
  });

  it('writes agent.json that the agent contract accepts, with the right roles, hops and tenants', () => {
    const agent = (node: string) => agentConfigSchema.parse(JSON.parse(bundles.find((b) => b.node === node)!.files.find((f) => f.path === 'agent/agent.json')!.data.toString()));
    const e = agent('bj-edge-01');
    expect(e).toMatchObject({ role: 'edge', listen: '127.0.0.1:7311', admin: '127.0.0.1:7312', dataDir: '/var/lib/edgectl/spool', upstreams: ['http://198.51.100.20:80/v1/forward'], credentialFile: '/var/lib/edgectl/secrets/agent-token' });
    expect(e.tenants.map((t) => t.name)).toEqual(['acme', 'globex']);
    const globex = e.tenants.find((t) => t.name === 'globex')!;
    expect(globex.topics).toEqual([{ name: 'shelf-events', whenFull: 'reject' }, { name: 'telemetry', whenFull: 'drop-oldest', ttlSeconds: 7 * 86400 }]);
    expect(globex.spoolBytes).toBe(128 * 1024 * 1024);
    expect(globex.requestsPerSecond).toBe(200);
    expect(agent('bj-relay-01')).toMatchObject({ role: 'relay', upstreams: ['https://hub.demo.example/v1/forward'] });
    expect(agent('bj-relay-01').tenants.map((t) => t.name)).toEqual(['acme', 'globex', 'initech']);
    const hub = agent('dc-core-01');
    expect(hub).toMatchObject({ role: 'hub', upstreams: [], sink: 'file:/var/lib/edgectl/spool/sink.jsonl' });
    expect(agent('sh-edge-02').fastcgi).toEqual([{ app: 'initech.initech-portal', socket: '/var/lib/edgectl/run/fastcgi/initech.initech-portal.sock', root: '/var/lib/edgectl/current/apps/initech.initech-portal', command: ['php-cgi'], processes: 1, digest: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    for (const b of bundles) agentConfigSchema.parse(JSON.parse(b.files.find((f) => f.path === 'agent/agent.json')!.data.toString()));
  });

  it('writes Kong config with stable ids, tags, rate limit and vault-referenced keys', () => {
    const kong = parseYaml(bundles.find((b) => b.node === 'bj-edge-01')!.files.find((f) => f.path === 'kong/kong.yml')!.data.toString());
    expect(kong._format_version).toBe('3.0');
    const svc = kong.services[0];
    expect(svc).toMatchObject({ name: 'globex.globex-pos-api', host: 'globex.globex-pos-api.upstream', port: 9000, protocol: 'http', tags: ['edgectl', 'tenant:globex', 'app:globex-pos-api'] });
    // The service host is always edgectl's own upstream, never the tenant's host.
    expect(kong.upstreams).toMatchObject([{ name: 'globex.globex-pos-api.upstream', targets: [{ target: '198.51.100.60:9000' }] }]);
    expect(svc.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(svc.routes[0]).toMatchObject({ hosts: ['api.globex.example'], paths: ['/v1/orders', '/v1/stock'], methods: ['GET', 'POST'] });
    expect(svc.plugins.find((p: any) => p.name === 'rate-limiting').config.second).toBe(200);
    expect(kong.consumers[0].keyauth_credentials[0].key).toBe('{vault://env/globex-pos-key}');
    // The same entity has the same id on every node it is rendered on.
    const other = parseYaml(bundles.find((b) => b.node === 'sh-edge-01')!.files.find((f) => f.path === 'kong/kong.yml')!.data.toString());
    expect(other.services[0].id).toBe(svc.id);
    expect(other.consumers[0].id).toBe(kong.consumers[0].id);
  });

  it('selects nodes by name and by selector, and names an unknown node', async () => {
    const loaded = await loadFleet(fleetDir);
    expect((await renderFleet(loaded, { edgectlVersion: TEST_VERSION, nodes: ['sh-edge-02'] })).map((b) => b.node)).toEqual(['sh-edge-02']);
    expect((await renderFleet(loaded, { edgectlVersion: TEST_VERSION, selector: { region: 'south' } })).map((b) => b.node)).toEqual(['sh-edge-01', 'sh-edge-02', 'sh-edge-03', 'sh-relay-01']);
    await expect(renderFleet(loaded, { edgectlVersion: TEST_VERSION, nodes: ['sh-edge-9'] })).rejects.toThrow(/unknown node "sh-edge-9"/);
  });

  it('replaces stale files when writing over an earlier render', async () => {
    const out = path.join(tmp.dir, 'stale-out');
    await writeBundles(bundles, out);
    await writeFile(path.join(out, 'sh-edge-02/nginx/conf.d/gone--old.conf'), 'server {}\n');
    await mkdir(path.join(out, 'sh-edge-02/apps/gone--old'), { recursive: true });
    await writeFile(path.join(out, 'sh-edge-02/apps/gone--old/x.html'), 'x');
    await writeFile(path.join(out, 'sh-edge-02/nginx/nginx.conf'), 'tampered');
    await writeBundles(bundles, out);
    const b = bundles.find((x) => x.node === 'sh-edge-02')!;
    expect(await listTree(path.join(out, 'sh-edge-02'))).toEqual([...b.files.map((f) => f.path), 'manifest.json'].sort());
    expect(await readFile(path.join(out, 'sh-edge-02/nginx/nginx.conf'))).toEqual(b.files.find((f) => f.path === 'nginx/nginx.conf')!.data);
    await expect(stat(path.join(out, 'sh-edge-02/apps/gone--old'))).rejects.toThrow();
  });

  it('writes a file shared by several bundles once and hard-links the others; a re-render never writes through a link', async () => {
    const out = path.join(tmp.dir, 'links-out');
    await writeBundles(bundles, out);
    const mime = await Promise.all(bundles.map((b) => stat(path.join(out, b.node, 'nginx/mime.types'))));
    expect(new Set(mime.map((s) => s.ino)).size).toBe(1);
    expect(mime[0].nlink).toBe(bundles.length);
    // One node's copy changes (its bundle now has other bytes there): the others keep theirs.
    const [first, ...rest] = bundles;
    const data = Buffer.from('types { text/plain txt; }\n');
    const entry = { ...first.manifest.files['nginx/mime.types'], sha256: sha256Hex(data), size: data.length };
    const changed: Bundle = {
      ...first,
      files: first.files.map((f) => (f.path === 'nginx/mime.types' ? { ...f, data } : f)),
      manifest: { ...first.manifest, files: { ...first.manifest.files, 'nginx/mime.types': entry } },
    };
    await writeBundles([changed, ...rest], out);
    expect(await readFile(path.join(out, first.node, 'nginx/mime.types'), 'utf8')).toBe('types { text/plain txt; }\n');
    const original = first.files.find((f) => f.path === 'nginx/mime.types')!.data;
    for (const b of rest) expect(await readFile(path.join(out, b.node, 'nginx/mime.types'))).toEqual(original);
    expect((await stat(path.join(out, first.node, 'nginx/mime.types'))).nlink).toBe(1);
    expect((await stat(path.join(out, rest[0].node, 'nginx/mime.types'))).nlink).toBe(rest.length);
  });

  it('adds the fleet\'s snippets and mime.types as parsed, allow-listed directives', async () => {
    const dir = path.join(tmp.dir, 'snippets');
    await import('node:fs/promises').then((fs) => fs.cp(fleetDir, dir, { recursive: true }));
    await mkdir(path.join(dir, 'templates/nginx/http.d'), { recursive: true });
    await mkdir(path.join(dir, 'templates/nginx/server.d'), { recursive: true });
    await writeFile(path.join(dir, 'templates/nginx/http.d/gzip.conf'), '# compress text\ngzip on;  gzip_types text/css application/json;\n');
    await writeFile(path.join(dir, 'templates/nginx/server.d/headers.conf'), "add_header Strict-Transport-Security 'max-age=31536000; includeSubDomains' always;\n");
    await writeFile(path.join(dir, 'templates/nginx/mime.types'), 'types {\n  text/html html;\n  text/css css;\n}\n');
    const out = await renderFleet(await loadFleet(dir), { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-03', 'bj-relay-01'] });
    const file = (b: (typeof out)[number], p: string) => b.files.find((f) => f.path === p)?.data.toString();
    const [edge, relay] = out;
    expect(file(edge, 'nginx/http.d/gzip.conf')).toBe('gzip on;\ngzip_types text/css application/json;\n');
    expect(file(edge, 'nginx/server.d/headers.conf')).toBe('add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;\n');
    expect(file(edge, 'nginx/mime.types')).toBe('types {\n    text/html html;\n    text/css css;\n}\n');
    expect(file(edge, 'nginx/nginx.conf')).toContain('    include http.d/*.conf;\n');
    expect(file(edge, 'nginx/conf.d/acme.acme-www.conf')).toContain('    include server.d/*.conf;\n');
    // A relay has no app server: the http snippets only.
    expect(relay.files.map((f) => f.path).filter((p) => p.includes('.d/'))).toEqual(['nginx/http.d/gzip.conf']);
  });

  it('renders a git revision: payloads come from that revision, not the working tree', async () => {
    const dir = path.join(tmp.dir, 'git');
    await import('node:fs/promises').then((fs) => fs.cp(fleetDir, dir, { recursive: true }));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' }).toString().trim();
    git('init', '-q', '-b', 'main');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'fleet');
    const commit = git('rev-parse', 'HEAD');
    await writeFile(path.join(dir, 'sites/acme-www/index.html'), 'changed in the working tree\n');
    const fromRev = await renderFleet(await loadFleet(dir, 'HEAD'), { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-03'] });
    const fromTree = await renderFleet(await loadFleet(dir), { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-03'] });
    const page = (b: Bundle[]) => b[0].files.find((f) => f.path === 'apps/acme.acme-www/index.html')!.data.toString();
    expect(page(fromRev)).toContain('ACME Logistics');
    expect(page(fromTree)).toBe('changed in the working tree\n');
    expect(fromRev[0].manifest.fleet).toEqual({ name: 'demo', commit, dirty: false });
    expect(fromTree[0].manifest.fleet).toEqual({ name: 'demo', commit, dirty: true });
  });
});
