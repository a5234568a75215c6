import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { access, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles } from '../../src/lib/render/index.js';
import { checkBundles } from '../../src/lib/render/check.js';
import { cli } from '../helpers/cli.js';
import { generateFleet } from '../helpers/gen-fleet.js';
import { REPO } from '../helpers/paths.js';
import { TEST_VERSION, copyExample, tempDir } from './helpers.js';


/** The real tools: Debian's nginx (nginx -t) and decK 1.4 (deck validate). */
describe('rendered bundles pass nginx -t and deck validate', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('check');
  });
  afterAll(() => tmp.cleanup());

  it('every node of fleet.example', async () => {
    const fleet = await copyExample(tmp.dir);
    const out = path.join(tmp.dir, 'example-out');
    const bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION });
    await writeBundles(bundles, out);
    const { results, deckMissing } = await checkBundles(out, bundles.map((b) => b.node));
    expect(deckMissing).toBe(false);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.filter((r) => r.tool === 'nginx')).toHaveLength(bundles.length);
    expect(results.filter((r) => r.tool === 'deck').map((r) => r.node)).toEqual(['bj-edge-01', 'bj-edge-02', 'sh-edge-01']);
  });

  it('every node of a generated 200-node fleet', async () => {
    const fleet = path.join(tmp.dir, 'gen200');
    await generateFleet(fleet, { edges: 200, apps: 60, tenants: 12, variety: true });
    const out = path.join(tmp.dir, 'gen200-out');
    const bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION });
    expect(bundles.length).toBeGreaterThanOrEqual(200);
    // Every app type is somewhere, and some nodes carry several apps.
    const confs = bundles.flatMap((b) => b.files.filter((f) => f.path.startsWith('nginx/conf.d/')).map((f) => f.data.toString()));
    for (const needle of ['proxy_cache_methods GET HEAD POST', 'fastcgi_pass unix:', 'proxy_pass http://127.0.0.1:8000', 'try_files $uri $uri/ =404']) expect(confs.some((c) => c.includes(needle)), needle).toBe(true);
    await writeBundles(bundles, out);
    const { results } = await checkBundles(out, bundles.map((b) => b.node));
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.filter((r) => r.tool === 'nginx')).toHaveLength(bundles.length);
    expect(results.filter((r) => r.tool === 'deck').length).toBeGreaterThanOrEqual(50);
  }, 600_000);

  it('a broken bundle fails with nginx\'s own message', async () => {
    const fleet = await copyExample(path.join(tmp.dir, 'broken'));
    const out = path.join(tmp.dir, 'broken-out');
    const bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-01'] });
    await writeBundles(bundles, out);
    const conf = path.join(out, 'bj-edge-01/nginx/conf.d/acme.acme-www.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('expires 10m;', 'expires ten-minutes;'));
    const kong = path.join(out, 'bj-edge-01/kong/kong.yml');
    await writeFile(kong, (await readFile(kong, 'utf8')).replace('strip_path: false', 'strip_path: false\n    bogus_field: 1'));
    const { results } = await checkBundles(out, ['bj-edge-01']);
    const nginx = results.find((r) => r.tool === 'nginx')!;
    expect(nginx.ok).toBe(false);
    expect(nginx.output).toMatch(/"expires" directive invalid value in .*bj-edge-01\/nginx\/conf\.d\/acme\.acme-www\.conf:\d+/);
    const deck = results.find((r) => r.tool === 'deck')!;
    expect(deck.ok).toBe(false);
    expect(deck.output).toMatch(/bogus_field/);
  });

  it('never runs nginx -t on a bundle that could load code: every nginx/ file is parsed first', async () => {
    const fleet = await copyExample(path.join(tmp.dir, 'guard'));
    const out = path.join(tmp.dir, 'guard-out');
    const nodes = ['bj-edge-01', 'bj-edge-02', 'bj-relay-01'];
    await writeBundles(await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION, nodes }), out);
    // A stand-in nginx that records being run: it must not be, for the two tampered bundles.
    const ran = path.join(tmp.dir, 'guard-ran');
    const fake = path.join(tmp.dir, 'fake-nginx');
    await writeFile(fake, `#!/bin/sh\necho "$*" >> ${ran}\n`, { mode: 0o755 });
    const mime = path.join(out, 'bj-edge-01/nginx/mime.types');
    const text = await readFile(mime, 'utf8');
    await rm(mime); // hard-linked with the other bundles' copies
    await writeFile(mime, text.replace('}', '} load_module /tmp/x.so; types { text/css css; }'));
    await symlink('/etc/nginx/nginx.conf', path.join(out, 'bj-edge-02/nginx/conf.d/zz.conf'));
    const { results } = await checkBundles(out, nodes, { nginx: fake });
    expect(results.filter((r) => r.tool === 'nginx').map((r) => [r.node, r.ok])).toEqual([['bj-edge-01', false], ['bj-edge-02', false], ['bj-relay-01', true]]);
    expect(results.find((r) => r.node === 'bj-edge-01' && r.tool === 'nginx')!.output).toMatch(/refusing to run nginx -t on this bundle:\nnginx\/mime\.types:\d+:3: the directive "load_module"/);
    expect(results.find((r) => r.node === 'bj-edge-02' && r.tool === 'nginx')!.output).toMatch(/nginx\/conf\.d\/zz\.conf: not a regular file/);
    expect((await readFile(ran, 'utf8')).trim().split('\n')).toHaveLength(1); // bj-relay-01 only
  });

  it('without decK: kong.yml is skipped and warned about once; without nginx: every node fails naming it', async () => {
    const fleet = await copyExample(path.join(tmp.dir, 'no-tools'));
    const out = path.join(tmp.dir, 'no-tools-out');
    const bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-01', 'bj-edge-02', 'bj-relay-01'] });
    await writeBundles(bundles, out);
    const nodes = bundles.map((b) => b.node);
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const noDeck = await checkBundles(out, nodes, { deck: path.join(tmp.dir, 'no-such-deck'), logger });
    expect(noDeck.deckMissing).toBe(true);
    expect(noDeck.results.map((r) => `${r.node} ${r.tool} ${r.ok}`)).toEqual(['bj-edge-01 nginx true', 'bj-edge-02 nginx true', 'bj-relay-01 nginx true']);
    expect(warnings).toEqual(['decK is not installed: kong.yml files were not validated']);
    const noNginx = await checkBundles(out, nodes, { nginx: path.join(tmp.dir, 'no-such-nginx') });
    expect(noNginx.results.filter((r) => r.tool === 'nginx').map((r) => [r.node, r.ok])).toEqual(nodes.map((n) => [n, false]));
    for (const r of noNginx.results.filter((x) => x.tool === 'nginx')) expect(r.output).toMatch(/cannot run .*no-such-nginx: .*ENOENT/);
  });

  describe('edgectl render (CLI)', () => {
    it('renders to .edgectl/render inside the fleet and checks with --check --json', async () => {
      const fleet = await copyExample(path.join(tmp.dir, 'cli'));
      // A copy of fleet.example is not edgectl's own: its demo identity is not used unasked.
      const bare = await cli(['render', '--fleet', fleet, '--check', '--json'], { env: { EDGECTL_AGE_IDENTITY_FILE: undefined }, home: tmp.dir });
      expect(bare.code).toBe(1);
      expect(bare.stderr).toMatch(/no age identity/);
      const r = await cli(['render', '--fleet', fleet, '--check', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.out).toBe(path.join(fleet, '.edgectl/render'));
      expect(j.nodes).toHaveLength(10);
      expect(j.check).toMatchObject({ nginx: 10, deck: 3, failed: [] });
      const m = JSON.parse(await readFile(path.join(fleet, '.edgectl/render/sh-edge-02/manifest.json'), 'utf8'));
      expect(m.digest).toBe(j.nodes.find((n: any) => n.node === 'sh-edge-02').digest);
      expect(m.edgectl).toBe(JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')).version);
    });

    it('exits 1 with the tool\'s output when a check fails', async () => {
      const fleet = await copyExample(path.join(tmp.dir, 'cli-bad'));
      // A snippet that passes the allow-list but not nginx: nginx's own words come through.
      await mkdir(path.join(fleet, 'templates/nginx/server.d'), { recursive: true });
      await writeFile(path.join(fleet, 'templates/nginx/server.d/cache.conf'), 'expires ten-minutes;\n');
      const r = await cli(['render', '--fleet', fleet, '--node', 'bj-edge-03', '--check']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/"expires" directive invalid value in \S*bj-edge-03\/nginx\/server\.d\/cache\.conf:1/);
      expect(r.stderr).toMatch(/EDGECTL_CHECK_FAILED/);
    });

    it('exits 1 naming an unknown node and a bad selector', async () => {
      const fleet = await copyExample(path.join(tmp.dir, 'cli-usage'));
      const a = await cli(['render', '--fleet', fleet, '--node', 'bj-edge-99']);
      expect(a.code).toBe(1);
      expect(a.stderr).toMatch(/unknown node "bj-edge-99"/);
      const b = await cli(['render', '--fleet', fleet, '--selector', 'region']);
      expect(b.code).toBe(1);
      expect(b.stderr).toMatch(/not key=value/);
    });

    it('a render that fails before any bundle leaves no output directory behind', async () => {
      const fleet = await copyExample(path.join(tmp.dir, 'cli-no-out'));
      const r = await cli(['render', '--fleet', fleet, '--node', 'bj-edge-99']);
      expect(r.code).toBe(1);
      await expect(access(path.join(fleet, '.edgectl/render'))).rejects.toThrow(/ENOENT/);
    });

    it('edgectl placement prints the app → nodes table and JSON', async () => {
      const fleet = await copyExample(path.join(tmp.dir, 'cli-place'));
      const t = await cli(['placement', '--fleet', fleet]);
      expect(t.code).toBe(0);
      expect(t.stdout).toMatch(/acme-www\s+acme\s+static\s+all\s+bj-edge-01, bj-edge-02/);
      const j = JSON.parse((await cli(['placement', '--fleet', fleet, '--json'])).stdout);
      expect(j.apps.find((a: any) => a.app === 'initech-portal')).toMatchObject({ mode: 'replicas', wanted: 1, nodes: ['sh-edge-02'] });
      expect(j.nodes['sh-edge-02']).toContain('initech-portal');
    });
  });
});
