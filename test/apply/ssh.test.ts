import { chmod, mkdtemp, readdir, readlink, rm, appendFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { cli, json } from '../helpers/cli.js';
import { closeNginxLab, writeApps, type TestApp } from './helpers.js';

/**
 * End to end over real sshd: a relay in its own network namespace, two edge nodes reachable
 * only through it (their sshd and nginx are invisible from here), and a core node reached
 * directly. Every check is a real HTTP request to the node's nginx, made from where the node is.
 */
const HTTP_PORT = 23500;
const CORE_HTTP = { address: '127.0.2.30', port: 23501 };
let lab: Lab;
let dir: string;
let fleet: string;
let home: string;
let relay: LabHost;
let e1: LabHost;
let e2: LabHost;
let core: LabHost;
let apps: TestApp[];
const flags = () => ['--fleet', fleet, '--identity', lab.clientKey];
const run = (args: string[]) => cli(args, { home });
const current = async (h: LabHost) => (await readlink(join(h.root, 'current'))).replace('releases/', '');

/** curl inside the node's own network namespace: the node's nginx as its clients see it. */
async function fetchOn(h: LabHost, host: string, path = '/'): Promise<{ status: number; body: string }> {
  const url = h.netns ? `http://127.0.0.1:${HTTP_PORT}${path}` : `http://${CORE_HTTP.address}:${CORE_HTTP.port}${path}`;
  const r = await lab.execIn(h.netns ? h : undefined, ['curl', '-s', '-m', '5', '-H', `Host: ${host}`, '-w', '\n%{http_code}', url]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i + 1 === 0 ? 0 : i) };
}

async function setApp(name: string, patch: Partial<TestApp>) {
  apps = apps.map((a) => (a.name === name ? { ...a, ...patch } : a));
  await writeApps(fleet, apps);
}

beforeAll(async () => {
  lab = await createLab();
  await chmod(lab.dir, 0o755); // nginx workers (nobody) read the static files under each node root
  relay = await lab.addHost('relay-1', { relay: true });
  e1 = await lab.addHost('edge-1', { behind: relay });
  e2 = await lab.addHost('edge-2', { behind: relay });
  core = await lab.addHost('core-1');
  dir = await mkdtemp(join(tmpdir(), 'ec-ssh-apply-'));
  fleet = join(dir, 'fleet');
  home = join(dir, 'home');
  await lab.writeFleet(fleet, { pin: true });
  // Each node's nginx: in its namespace on HTTP_PORT; the core (root namespace) on my loopback address.
  const docs = [relay, e1, e2].map((h) => lab.nodeDoc(h, { pin: true, spec: { http: { port: HTTP_PORT } } }));
  docs.push(lab.nodeDoc(core, { pin: true, spec: { http: CORE_HTTP } }));
  await writeFile(join(fleet, 'nodes.yaml'), docs.join('---\n'));
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  apps = [
    { name: 'web', domain: 'www.acme.test', nodes: ['edge-1', 'edge-2'], html: 'web v1\n' },
    { name: 'blog', domain: 'blog.acme.test', nodes: ['edge-1'], html: 'blog v1\n' },
  ];
  await writeApps(fleet, apps);
}, 120_000);

afterAll(async () => {
  await closeNginxLab(lab, dir);
});

describe('apply over SSH through a relay', { timeout: 180_000 }, () => {
  it('the edges cannot be reached directly: only through relay-1', async () => {
    // No route from here to the edges' subnet: curl cannot connect (exit 7), it does not merely time out (28) or fail otherwise.
    const r = await lab.execIn(undefined, ['curl', '-sS', '-m', '2', `http://${e1.address}:${e1.port}/`]);
    expect(r.code, r.stderr).toBe(7);
    const p = await run(['plan', ...flags()]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/edge-1\s+edge\s+via relay-1\s+yes\s+none → /);
    expect(p.stdout).toMatch(/core-1\s+core\s+direct\s+yes/);
  });

  it('first apply: every node serves each app placed on it', async () => {
    const r = await run(['apply', ...flags(), '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(json(r).summary.applied).toBe(4);
    for (const h of [e1, e2]) expect(await fetchOn(h, 'www.acme.test')).toEqual({ status: 200, body: 'web v1\n' });
    expect(await fetchOn(e1, 'blog.acme.test')).toEqual({ status: 200, body: 'blog v1\n' });
    expect((await fetchOn(e2, 'blog.acme.test')).status).toBe(404);
    expect((await fetchOn(core, 'x', '/healthz')).status).toBe(200);
  });

  it('a no-op apply sends nothing and reloads nothing', async () => {
    const r = await run(['apply', ...flags(), '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).summary).toMatchObject({ unchanged: 4, applied: 0, uploadedFiles: 0, uploadedBytes: 0, reloads: 0 });
  });

  it('one app changed: only the node it is placed on changes', async () => {
    await setApp('blog', { html: 'blog v2\n' });
    const before = await current(e2);
    const r = await run(['apply', ...flags(), '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = json(r);
    expect(rep.nodes.filter((n: any) => n.outcome === 'applied').map((n: any) => n.node)).toEqual(['edge-1']);
    expect(rep.summary.uploadedFiles).toBe(2);
    expect(await fetchOn(e1, 'blog.acme.test')).toEqual({ status: 200, body: 'blog v2\n' });
    expect(await current(e2)).toBe(before);
  });

  it('a snippet that fails nginx -t on the node: the node keeps serving the old release', async () => {
    await import('node:fs/promises').then((f) => f.mkdir(join(fleet, 'templates', 'nginx', 'server.d'), { recursive: true }));
    await writeFile(join(fleet, 'templates', 'nginx', 'server.d', 'cache.conf'), 'expires soon-ish;\n');
    try {
      const r = await run(['apply', ...flags(), '--yes', '--json', '--max-failures', '100%']);
      expect(r.code).toBe(1);
      const n = json(r).nodes.find((x: any) => x.node === 'edge-2');
      expect(n).toMatchObject({ outcome: 'failed', step: 'validate' });
      expect(n.output).toContain('"expires" directive invalid value');
      expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v1\n' });
    } finally {
      await rm(join(fleet, 'templates'), { recursive: true });
    }
  });

  it('a failing health check: rollback, the old release serves', async () => {
    await setApp('web', { html: 'web v2\n', healthCheck: { path: '/missing', expectStatus: 200 } });
    try {
      const before = await current(e2);
      const r = await run(['apply', ...flags(), '--yes', '--json', '--max-failures', '100%']);
      expect(r.code).toBe(1);
      const n = json(r).nodes.find((x: any) => x.node === 'edge-2');
      expect(n).toMatchObject({ outcome: 'rolled-back', step: 'health' });
      expect(await current(e2)).toBe(before);
      expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v1\n' });
    } finally {
      await setApp('web', { html: 'web v1\n', healthCheck: undefined });
    }
  });

  it('the SSH connection killed in the middle of an upload: node unchanged, the next apply succeeds', async () => {
    await setApp('web', { html: 'web v3 ' + 'z'.repeat(40 * 1024 * 1024) + '\n' });
    const before = await current(e2);
    const applying = run(['apply', ...flags(), '--node', 'edge-2', '--yes', '--json']);
    // Kill the relay's per-connection sshd once edge-2's staging directory starts filling up.
    let killed = false;
    for (let i = 0; i < 600 && !killed; i++) {
      const tmp = (await readdir(join(e2.root, 'releases')).catch(() => [] as string[])).find((d) => d.startsWith('.tmp-'));
      const big = tmp ? await import('node:fs/promises').then((f) => f.stat(join(e2.root, 'releases', tmp, 'apps', 'acme.web', 'index.html')).catch(() => undefined)) : undefined;
      if (big && big.size > 0) {
        await lab.killSessions(relay);
        killed = true;
      } else await new Promise((r) => setTimeout(r, 10));
    }
    const r = await applying;
    expect(killed).toBe(true);
    expect(r.code).toBe(1);
    const n = json(r).nodes.find((x: any) => x.node === 'edge-2');
    expect(['failed', 'unreachable']).toContain(n.outcome);
    expect(await current(e2)).toBe(before);
    expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v1\n' });
    await setApp('web', { html: 'web v3\n' });
    const again = await run(['apply', ...flags(), '--yes', '--json']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v3\n' });
    expect((await readdir(join(e2.root, 'releases'))).filter((d) => d.startsWith('.tmp-'))).toEqual([]);
  });

  it('two applies at once: the second is refused by the lock (or, coming after, finds the node already at its target)', async () => {
    await setApp('web', { html: 'web v4\n' });
    const [a, b] = await Promise.all([run(['apply', ...flags(), '--yes', '--json', '--max-failures', '100%']), run(['apply', ...flags(), '--yes', '--json', '--max-failures', '100%'])]);
    for (const h of [e1, e2]) {
      const outcomes = [json(a), json(b)].map((rep) => rep.nodes.find((n: any) => n.node === h.name).outcome);
      expect(outcomes.filter((o) => o === 'applied')).toHaveLength(1);
      // A second apply that comes after the first finds the node at its own target: unchanged, not stale (issue 12 item 5).
      expect(outcomes.filter((o) => o !== 'applied').every((o) => ['locked', 'unchanged'].includes(o)), outcomes.join(',')).toBe(true);
      expect(await fetchOn(h, 'www.acme.test')).toEqual({ status: 200, body: 'web v4\n' });
    }
  });

  it('a stale plan is refused', async () => {
    await setApp('web', { html: 'web v5\n' });
    const planFile = join(dir, 'plan.json');
    expect((await run(['plan', ...flags(), '--out', planFile])).code).toBe(0);
    const rb = await run(['rollback', ...flags(), '--node', 'edge-1', '--yes']);
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    const r = await run(['apply', planFile, ...flags(), '--yes', '--json', '--max-failures', '100%']);
    expect(r.code).toBe(1);
    expect(json(r).nodes.find((n: any) => n.node === 'edge-1').outcome).toBe('stale');
    expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v5\n' });
    expect((await run(['apply', ...flags(), '--yes'])).code).toBe(0);
  });

  it('a file edited by hand on a node: drift reports it, drift --fix repairs it', async () => {
    await appendFile(join(e1.root, 'current', 'apps', 'acme.blog', 'index.html'), 'defaced\n');
    const d = await run(['drift', ...flags(), '--json']);
    expect(d.code).toBe(2);
    expect(json(d).nodes.find((n: any) => n.node === 'edge-1')).toMatchObject({ status: 'modified', modified: { modified: ['apps/acme.blog/index.html'] } });
    const fix = await run(['drift', ...flags(), '--fix', '--yes']);
    expect(fix.code, fix.stdout + fix.stderr).toBe(2);
    expect(await fetchOn(e1, 'blog.acme.test')).toEqual({ status: 200, body: 'blog v2\n' });
    expect((await run(['drift', ...flags()])).code).toBe(0);
  });

  it('rollback returns a node to its previous release, which then serves', async () => {
    const r = await run(['rollback', ...flags(), '--node', 'edge-2', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v4\n' });
    const p = await run(['plan', ...flags(), '--json', '--detailed-exitcode']);
    expect(p.code).toBe(2);
    expect(json(p).nodes.find((n: any) => n.node === 'edge-2').action).toBe('update');
  });

  it('a changed host key is refused; the node is unreachable in plan (exit 1 unless --skip-unreachable)', async () => {
    await lab.rekey(e2);
    const p = await run(['plan', ...flags(), '--json']);
    expect(p.code).toBe(1);
    const n = json(p).nodes.find((x: any) => x.node === 'edge-2');
    expect(n.action).toBe('unreachable');
    expect(n.error).toMatch(/host key/i);
    expect((await run(['plan', ...flags(), '--skip-unreachable'])).code).toBe(0);
    const a = await run(['apply', ...flags(), '--node', 'edge-2', '--yes', '--json']);
    expect(a.code).toBe(1);
    expect(json(a).nodes[0].outcome).toBe('unreachable');
    expect(await fetchOn(e2, 'www.acme.test')).toEqual({ status: 200, body: 'web v4\n' });
  });
});
