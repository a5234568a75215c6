import { chmod, mkdtemp, readFile, readdir, readlink, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, makeHolder, releaseLock } from '../../src/lib/release/lock.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { cli, json } from '../helpers/cli.js';
import { get, killNginx, nginxPid, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * The embedded default end to end through the real CLI: three nodes as local directories, each
 * with its own real nginx on 127.0.2.1 (its local-mode port, from free ports), every scenario asserted by real HTTP requests.
 */
const ADDR = '127.0.2.1';
const NODES = ['e1', 'e2', 'e3'];
let PORTS: LocalPortBlock;
const port = (n: string) => PORTS.of(n).http;
let dir: string;
let fleet: string;
let root: string;
let apps: TestApp[];
const local = () => ['--fleet', fleet, '--local', root, ...PORTS.flags, '--local-address', ADDR];
const current = async (n: string) => (await readlink(join(root, n, 'current'))).replace('releases/', '');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-apply-'));
  PORTS = await localPortBlock(NODES, ADDR);
  await chmod(dir, 0o755); // nginx workers (nobody) traverse node roots to serve static files
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  apps = [
    { name: 'web', domain: 'www.acme.test', nodes: ['e1', 'e2'], html: '<h1>web v1</h1>\n' },
    { name: 'blog', domain: 'blog.acme.test', nodes: ['e3'], html: '<h1>blog v1</h1>\n' },
    { name: 'shop', domain: 'shop.acme.test', nodes: ['e1', 'e2', 'e3'], html: '<h1>shop v1</h1>\n' },
  ];
  await writeTestFleet(fleet, { nodes: NODES, apps });
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setApp(name: string, patch: Partial<TestApp>) {
  apps = apps.map((a) => (a.name === name ? { ...a, ...patch } : a));
  await writeApps(fleet, apps);
}

describe('apply --local (real nginx per node)', { timeout: 180_000 }, () => {
  it('first apply: every node serves each app placed on it, and only those', async () => {
    const plan = await cli(['plan', ...local(), '--detailed-exitcode']);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stdout).toMatch(/e1\s+edge\s+local\s+yes\s+none → /);
    const r = await cli(['apply', ...local(), '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = json(r);
    expect(rep.summary.applied).toBe(3);
    for (const a of apps) {
      for (const n of NODES) {
        const res = await get(ADDR, port(n), a.domain);
        if (a.nodes.includes(n)) expect([res.status, res.body]).toEqual([200, a.html]);
        else expect(res.status).toBe(404); // the default server: the app is not placed here
      }
    }
    expect(await current('e1')).toBe((await readlink(join(root, 'e1', 'good'))).replace('releases/', ''));
  });

  it('apply without --yes off a terminal is refused and changes nothing', async () => {
    await setApp('web', { html: '<h1>web v1b</h1>\n' });
    const before = await current('e1');
    const r = await cli(['apply', ...local()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('EDGECTL_NOT_CONFIRMED');
    expect(await current('e1')).toBe(before);
    await setApp('web', { html: '<h1>web v1</h1>\n' });
  });

  it('a no-op apply sends nothing and reloads nothing', async () => {
    const pids = NODES.map((n) => nginxPid(root, n));
    const releases = await Promise.all(NODES.map((n) => readdir(join(root, n, 'releases'))));
    const r = await cli(['apply', ...local(), '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = json(r);
    expect(rep.summary).toMatchObject({ applied: 0, unchanged: 3, uploadedFiles: 0, uploadedBytes: 0, reloads: 0 });
    expect(NODES.map((n) => nginxPid(root, n))).toEqual(pids);
    expect(await Promise.all(NODES.map((n) => readdir(join(root, n, 'releases'))))).toEqual(releases);
    // The error log would show a reload ("signal process started" / "reconfiguring"): none happened.
    const log = await readFile(join(root, 'e1', 'log', 'error.log'), 'utf8');
    expect(log).not.toContain('reconfiguring');
  });

  it('one app changed: only the nodes it is placed on change, sending only the changed file', async () => {
    await setApp('blog', { html: '<h1>blog v2</h1>\n' });
    const plan = await cli(['plan', ...local(), '--json']);
    const p = json(plan);
    expect(p.nodes.map((n: any) => [n.node, n.action])).toEqual([['e1', 'none'], ['e2', 'none'], ['e3', 'update']]);
    expect(p.nodes[2].files).toEqual({ added: [], changed: ['apps/acme.blog/index.html'], removed: [] });
    const before = { e1: await current('e1'), e2: await current('e2') };
    const r = await cli(['apply', ...local(), '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const e3 = json(r).nodes.find((n: any) => n.node === 'e3');
    expect(e3.outcome).toBe('applied');
    expect(e3.transfer.files).toBe(2); // the changed file and manifest.json; the rest copied on the node
    expect(e3.transfer.copied).toBeGreaterThan(3);
    expect((await get(ADDR, port('e3'), 'blog.acme.test')).body).toBe('<h1>blog v2</h1>\n');
    expect({ e1: await current('e1'), e2: await current('e2') }).toEqual(before);
  });

  it('plan --diff shows a unified diff per nginx file', async () => {
    await setApp('web', { domain: 'www2.acme.test' });
    const r = await cli(['plan', ...local(), '--diff']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('--- a/nginx/conf.d/acme.web.conf');
    expect(r.stdout).toMatch(/^-\s+server_name www\.acme\.test;$/m);
    expect(r.stdout).toMatch(/^\+\s+server_name www2\.acme\.test;$/m);
    await setApp('web', { domain: 'www.acme.test' });
  });

  it('a snippet that renders but fails nginx -t on the node: the node keeps serving the old release', async () => {
    await mkdir(join(fleet, 'templates', 'nginx', 'server.d'), { recursive: true });
    await writeFile(join(fleet, 'templates', 'nginx', 'server.d', 'cache.conf'), 'expires soon-ish;\n');
    const before = await current('e1');
    try {
      const r = await cli(['apply', ...local(), '--yes', '--json']);
      expect(r.code).toBe(1);
      const e1 = json(r).nodes.find((n: any) => n.node === 'e1');
      expect(e1).toMatchObject({ outcome: 'failed', step: 'validate' });
      expect(e1.output).toMatch(/"expires" directive invalid value in \S+\/nginx\/server\.d\/cache\.conf:1/); // nginx's own words
      expect(await current('e1')).toBe(before);
      expect((await get(ADDR, port('e1'), 'www.acme.test')).body).toBe('<h1>web v1</h1>\n');
    } finally {
      await rm(join(fleet, 'templates'), { recursive: true });
    }
  });

  it('a failing health check rolls the node back; the old release serves', async () => {
    await setApp('blog', { html: '<h1>blog v3</h1>\n', healthCheck: { path: '/no-such-page', expectStatus: 200 } });
    const before = await current('e3');
    try {
      const r = await cli(['apply', ...local(), '--yes', '--json']);
      expect(r.code).toBe(1);
      const e3 = json(r).nodes.find((n: any) => n.node === 'e3');
      expect(e3).toMatchObject({ outcome: 'rolled-back', step: 'health' });
      expect(e3.output).toContain('answered 404, expected 200');
      // The nginx config is the same in both releases: neither the switch nor the switch back reloads.
      expect(e3.reloads).toBe(0);
      expect(await current('e3')).toBe(before);
      expect((await get(ADDR, port('e3'), 'blog.acme.test')).body).toBe('<h1>blog v2</h1>\n');
    } finally {
      await setApp('blog', { html: '<h1>blog v2</h1>\n', healthCheck: undefined });
    }
  });

  it('a node locked by another apply is refused naming the holder; an expired lock is broken', async () => {
    await setApp('shop', { html: '<h1>shop v2</h1>\n' });
    const t = new LocalTransport('e2', join(root, 'e2'));
    const holder = { ...makeHolder('edgectl apply'), holder: 'alice@ops-box' };
    const line = await acquireLock(t, join(root, 'e2'), holder);
    const r = await cli(['apply', ...local(), '--yes', '--json', '--max-failures', '100%']);
    expect(r.code).toBe(1);
    const e2 = json(r).nodes.find((n: any) => n.node === 'e2');
    expect(e2.outcome).toBe('locked');
    expect(e2.cause).toContain('alice@ops-box');
    expect((await get(ADDR, port('e2'), 'shop.acme.test')).body).toBe('<h1>shop v1</h1>\n');
    expect((await get(ADDR, port('e1'), 'shop.acme.test')).body).toBe('<h1>shop v2</h1>\n');
    await releaseLock(t, join(root, 'e2'), line);
    // A holder that died: its lock has expired and is broken by the next apply.
    await acquireLock(t, join(root, 'e2'), { ...makeHolder('edgectl apply', -1000), holder: 'dead@box' });
    const again = await cli(['apply', ...local(), '--yes', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((await get(ADDR, port('e2'), 'shop.acme.test')).body).toBe('<h1>shop v2</h1>\n');
  });

  it('two applies at once: each node is applied once, the other run is refused by the lock (or sees a stale plan)', async () => {
    await setApp('shop', { html: '<h1>shop v3</h1>\n' });
    const [a, b] = await Promise.all([cli(['apply', ...local(), '--yes', '--json', '--max-failures', '100%']), cli(['apply', ...local(), '--yes', '--json', '--max-failures', '100%'])]);
    const ra = json(a).nodes;
    const rb = json(b).nodes;
    for (const n of NODES) {
      const outcomes = [ra.find((x: any) => x.node === n).outcome, rb.find((x: any) => x.node === n).outcome].sort();
      expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
      for (const o of outcomes) expect(['applied', 'locked', 'stale', 'unchanged']).toContain(o);
      expect((await get(ADDR, port(n), 'shop.acme.test')).body).toBe('<h1>shop v3</h1>\n');
    }
  });

  it('a stale plan is refused for the node that changed since', async () => {
    await setApp('shop', { html: '<h1>shop v4</h1>\n' });
    const planFile = join(dir, 'plan.json');
    const p = await cli(['plan', ...local(), '--out', planFile]);
    expect(p.code, p.stderr).toBe(0);
    expect((await import('node:fs')).statSync(planFile).mode & 0o777).toBe(0o600);
    // Someone rolls e1 back meanwhile: the plan was made against another release.
    const rb = await cli(['rollback', ...local(), '--node', 'e1', '--yes']);
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    // A plan made in local mode stays in local mode: no --local needed to apply it.
    const r = await cli(['apply', planFile, '--fleet', fleet, '--yes', '--json', '--max-failures', '100%']);
    expect(r.code).toBe(1);
    const rep = json(r);
    expect(rep.nodes.find((n: any) => n.node === 'e1')).toMatchObject({ outcome: 'stale', step: 'stale', code: 'EDGECTL_PLAN_STALE' });
    expect(rep.nodes.find((n: any) => n.node === 'e2').outcome).toBe('applied');
    expect((await get(ADDR, port('e2'), 'shop.acme.test')).body).toBe('<h1>shop v4</h1>\n');
    expect((await get(ADDR, port('e1'), 'shop.acme.test')).body).toBe('<h1>shop v2</h1>\n');
    const fix = await cli(['apply', ...local(), '--yes']);
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
  });

  it('a plan file edited by hand is refused before anything is sent', async () => {
    await setApp('shop', { html: '<h1>shop v5</h1>\n' });
    const planFile = join(dir, 'plan2.json');
    expect((await cli(['plan', ...local(), '--out', planFile])).code).toBe(0);
    const p = JSON.parse(await readFile(planFile, 'utf8'));
    const sha = Object.keys(p.blobs).find((k) => Buffer.from(p.blobs[k], 'base64').toString().includes('shop v5'))!;
    p.blobs[sha] = Buffer.from('<h1>evil</h1>\n').toString('base64');
    await writeFile(planFile, JSON.stringify(p));
    const r = await cli(['apply', planFile, ...local(), '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('do not match its sha256');
    expect((await get(ADDR, port('e3'), 'shop.acme.test')).body).toBe('<h1>shop v4</h1>\n');
    await setApp('shop', { html: '<h1>shop v4</h1>\n' });
  });

  it('a file edited by hand: drift says "modified on node", drift --fix repairs it', async () => {
    const clean = await cli(['drift', ...local()]);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    const file = join(root, 'e2', 'current', 'apps', 'acme.web', 'index.html');
    await appendFile(file, '<script>hacked()</script>\n');
    const d = await cli(['drift', ...local(), '--json']);
    expect(d.code).toBe(2);
    const e2 = json(d).nodes.find((n: any) => n.node === 'e2');
    expect(e2).toMatchObject({ status: 'modified', outdated: false });
    expect(e2.modified.modified).toEqual(['apps/acme.web/index.html']);
    expect(json(d).nodes.filter((n: any) => n.status !== 'clean').map((n: any) => n.node)).toEqual(['e2']);
    const text = await cli(['drift', ...local()]);
    expect(text.stdout).toMatch(/e2\s+modified on node/);
    const fix = await cli(['drift', ...local(), '--fix', '--yes', '--json']);
    expect(fix.code, fix.stdout + fix.stderr).toBe(2);
    const fr = json(fix).fix.nodes;
    expect(fr.map((n: any) => [n.node, n.outcome])).toEqual([['e2', 'applied']]);
    expect(fr[0].transfer.files).toBe(1);
    expect((await get(ADDR, port('e2'), 'www.acme.test')).body).toBe('<h1>web v1</h1>\n');
    expect((await cli(['drift', ...local()])).code).toBe(0);
  });

  it('rollback returns a node to its previous release, which then serves; plan shows it behind git', async () => {
    const before = await current('e3');
    const r = await cli(['rollback', ...local(), '--node', 'e3', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ node: 'e3', outcome: 'applied', from: before });
    expect(await current('e3')).toBe(res.to);
    expect((await get(ADDR, port('e3'), 'shop.acme.test')).body).toBe('<h1>shop v3</h1>\n');
    const p = await cli(['plan', ...local(), '--detailed-exitcode', '--json']);
    expect(p.code).toBe(2);
    expect(json(p).nodes.find((n: any) => n.node === 'e3').action).toBe('update');
    const d = await cli(['drift', ...local(), '--json']);
    expect(json(d).nodes.find((n: any) => n.node === 'e3').status).toBe('outdated');
    expect((await cli(['apply', ...local(), '--yes'])).code).toBe(0);
    expect((await get(ADDR, port('e3'), 'shop.acme.test')).body).toBe('<h1>shop v4</h1>\n');
  });

  it('keeps the last 5 releases (plus current and good)', async () => {
    for (let i = 0; i < 6; i++) {
      await setApp('blog', { html: `<h1>blog k${i}</h1>\n` });
      const r = await cli(['apply', ...local(), '--yes', '--node', 'e3']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const rel = (await readdir(join(root, 'e3', 'releases'))).filter((d) => !d.startsWith('.'));
    expect(rel).toHaveLength(5);
    expect(rel).toContain(await current('e3'));
    expect((await get(ADDR, port('e3'), 'blog.acme.test')).body).toBe('<h1>blog k5</h1>\n');
  });
});
