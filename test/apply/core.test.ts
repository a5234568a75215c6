import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import { EdgectlError } from '../../src/lib/errors.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { kongDiff } from '../../src/lib/plan/kong-diff.js';
import { stageRelease, noTransfer } from '../../src/lib/release/stage.js';
import { switchCurrent } from '../../src/lib/release/switch.js';
import { resetToWork } from '../../src/lib/reset/index.js';
import { acquireLock, keepLock, makeHolder, releaseLock } from '../../src/lib/release/lock.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { createConnector, type Connector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { freePortRange } from '../helpers/ports.js';
import { get, killNginx, nginxPid, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/** The core in-process, where a failure has to be injected (a dying upload) or a boot simulated. */
const ADDR = '127.0.2.2';
// The node's nginx port: a free one on ADDR, found in beforeAll.
let BASE: number;
let dir: string;
let fleet: string;
let root: string;
let apps: TestApp[];
const local = { root: '', portBase: 0, portRange: 1, address: ADDR }; // one node: its nginx on portBase, its agent's ports the next two
const rollout = { canary: 0, batch: '100%', maxFailures: '100%', concurrency: 4 };

function deps(wrap?: (t: Transport) => Transport): FleetDeps {
  return {
    logger: silentLogger,
    now: () => new Date(),
    edgectlVersion: 'test',
    connect: (model: FleetModel): Connector => {
      const c = createConnector({ model, fleetRoot: fleet, localRoot: root });
      return wrap ? { ...c, open: async (n) => wrap(await c.open(n)) } : c;
    },
  };
}

async function apply(wrap?: (t: Transport) => Transport) {
  const d = deps(wrap);
  const planned = await planFleet(d, { fleet, local, concurrency: 4, diff: false });
  try {
    // A wrapped transport injects faults between steps: those runs take the step-by-step path.
    return await applyPlan(planned.plan, bundlesOf(planned), { connector: planned.connector, logger: silentLogger, now: d.now, stepByStep: !!wrap }, rollout);
  } finally {
    await planned.connector.close();
  }
}

const current = async () => (await readlink(join(root, 'n1', 'current'))).replace('releases/', '');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-core-'));
  BASE = local.portBase = await freePortRange(3, ADDR);
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  root = local.root = join(dir, 'nodes');
  apps = [{ name: 'web', domain: 'www.acme.test', nodes: ['n1'], html: 'v1\n' }, { name: 'big', domain: 'big.acme.test', nodes: ['n1'], html: 'x'.repeat(300_000) }];
  await writeTestFleet(fleet, { nodes: ['n1'], apps });
  const r = await apply();
  expect(r.summary.applied).toBe(1);
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('apply core', { timeout: 120_000 }, () => {
  it('an upload that dies midway leaves the node unchanged, and the next apply succeeds', async () => {
    const before = await current();
    apps = apps.map((a) => ({ ...a, html: a.name === 'web' ? 'v2\n' : 'y'.repeat(300_000) }));
    await writeApps(fleet, apps);
    let written = 0;
    const dying = (t: Transport): Transport => ({
      node: t.node, root: t.root,
      exec: (a, o) => t.exec(a, o), readFile: (p) => t.readFile(p), stat: (p) => t.stat(p), http: (r) => t.http(r), close: () => t.close(),
      async writeFiles(files) {
        // Half the bytes reach the node, then the connection "drops".
        await t.writeFiles(files.slice(0, 1).map((f) => ({ ...f, data: f.data.subarray(0, f.data.length >> 1) })));
        written++;
        throw new EdgectlError('EDGECTL_TRANSPORT', 'n1: cannot write: connection lost (test)');
      },
    });
    const r = await apply(dying);
    expect(written).toBe(1);
    expect(r.nodes[0]).toMatchObject({ outcome: 'failed', step: 'upload' });
    expect(await current()).toBe(before);
    expect((await get(ADDR, BASE, 'www.acme.test')).body).toBe('v1\n');
    expect((await readdir(join(root, 'n1', 'releases'))).some((d) => d.startsWith('.tmp-'))).toBe(true);
    const again = await apply();
    expect(again.nodes[0].outcome).toBe('applied');
    expect((await get(ADDR, BASE, 'www.acme.test')).body).toBe('v2\n');
    expect((await readdir(join(root, 'n1', 'releases'))).filter((d) => d.startsWith('.tmp-'))).toEqual([]);
  });

  it('nginx accepts the config in nginx -t but refuses it on reload: detected, rolled back, error log reported', async () => {
    const before = await current();
    // Another process holds the port: nginx -t ignores EADDRINUSE (it passes), the reload fails in the master.
    const squatter = createServer(() => {});
    await new Promise<void>((r) => squatter.listen(0, ADDR, r));
    const taken = (squatter.address() as { port: number }).port;
    // Once nginx -t has passed on the staged release, a second listen appears in it (as a config
    // that only the reload trips over would): fleets cannot write listen directives themselves.
    const secondListen = (t: Transport): Transport => ({
      node: t.node, root: t.root,
      readFile: (p) => t.readFile(p), stat: (p) => t.stat(p), http: (r) => t.http(r), close: () => t.close(), writeFiles: (f) => t.writeFiles(f),
      async exec(argv, o) {
        const r = await t.exec(argv, o);
        if (argv[1] === '-t' && r.code === 0) {
          const conf = join(dirname(argv[argv.length - 1]), 'conf.d', 'acme.web.conf');
          const text = await readFile(conf, 'utf8');
          await rm(conf); // the staged file may be a hard link to the current release's copy
          await writeFile(conf, text.replace(/^(\s*listen [^\n]*\n)/m, `$1    listen ${ADDR}:${taken};\n`));
        }
        return r;
      },
    });
    apps = apps.map((a) => (a.name === 'web' ? { ...a, html: 'v3\n' } : a));
    await writeApps(fleet, apps);
    // A new nginx config (not only new files), so that apply waits for its id after the reload.
    await mkdir(join(fleet, 'templates', 'nginx', 'server.d'), { recursive: true });
    await writeFile(join(fleet, 'templates', 'nginx', 'server.d', 'v3.conf'), 'add_header X-Release v3;\n');
    try {
      const r = await apply(secondListen);
      const n = r.nodes[0];
      expect(n, n.output).toMatchObject({ outcome: 'rolled-back', step: 'config' });
      expect(n.cause).toContain('does not serve the new config');
      expect(n.output).toContain(`bind() to ${ADDR}:${taken} failed (98: Address already in use)`);
      expect(await current()).toBe(before);
      expect((await get(ADDR, BASE, 'www.acme.test')).body).toBe('v2\n');
    } finally {
      squatter.close();
      await rm(join(fleet, 'templates'), { recursive: true });
    }
  });

  it('reset-to-work: an apply that died after switching current is undone at boot; idempotent; starts a stopped nginx', async () => {
    const good = await current();
    apps = apps.map((a) => (a.name === 'web' ? { ...a, html: 'v4\n' } : a));
    await writeApps(fleet, apps);
    // Re-enact an apply that died right after the switch: release staged, intent recorded, current moved, no reload.
    const d = deps();
    const planned = await planFleet(d, { fleet, local, concurrency: 1, diff: false });
    const b = bundlesOf(planned).get('n1')!;
    const t = await planned.connector.open('n1');
    const name = b.manifest.digest.slice(0, 20);
    await stageRelease(t, join(root, 'n1'), name, b, undefined, noTransfer());
    await switchCurrent(t, join(root, 'n1'), { op: 'activate', from: good, to: name, by: 'test', at: new Date().toISOString() });
    await planned.connector.close();
    expect(await current()).toBe(name);

    const check = { host: ADDR, port: BASE };
    const r1 = await resetToWork(join(root, 'n1'), { check });
    expect(r1).toMatchObject({ release: 'switched', from: name, to: good, nginx: 'reloaded' });
    expect(await current()).toBe(good);
    await expect(readFile(join(root, 'n1', '.edgectl', 'intent.json'))).rejects.toThrow();
    expect((await get(ADDR, BASE, 'www.acme.test')).body).toBe('v2\n');
    const r2 = await resetToWork(join(root, 'n1'), { check });
    expect(r2).toMatchObject({ release: 'unchanged', nginx: 'running' });

    const stopped = nginxPid(root, 'n1')!;
    process.kill(stopped, 'SIGTERM');
    // Until the master is gone, not only its port: a master still shutting down is "running" to reset.
    const gone = () => { try { process.kill(stopped, 0); return false; } catch { return true; } };
    for (let i = 0; i < 200 && !gone(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(gone()).toBe(true);
    const r3 = await resetToWork(join(root, 'n1'), { check });
    expect(r3).toMatchObject({ release: 'unchanged', nginx: 'started' });
    expect((await get(ADDR, BASE, 'www.acme.test')).body).toBe('v2\n');
  });
});

describe('node lock', () => {
  it('is renewed while held, released only by its holder, and refused to others naming the holder', async () => {
    const r = join(dir, 'locktest');
    await mkdir(r, { recursive: true });
    const t = new LocalTransport('lk', r);
    const line = await acquireLock(t, r, makeHolder('edgectl apply', 60_000));
    const first = JSON.parse(line).expires;
    const keeper = keepLock(t, r, line, { everyMs: 100, ttlMs: 120_000 });
    await new Promise((ok) => setTimeout(ok, 600));
    keeper.stop();
    const now = JSON.parse(await readFile(join(r, '.edgectl', 'lock', 'holder'), 'utf8'));
    expect(Date.parse(now.expires)).toBeGreaterThan(Date.parse(first));
    expect(now.id).toBe(JSON.parse(line).id);
    // Another holder can neither take it nor release it.
    const other = JSON.stringify({ ...makeHolder('edgectl apply'), id: 'someoneelse1' });
    await expect(acquireLock(t, r, JSON.parse(other))).rejects.toThrow(/is locked by .*pid \d+, edgectl apply/);
    await releaseLock(t, r, other);
    expect((await readdir(join(r, '.edgectl'))).includes('lock')).toBe(true);
    await releaseLock(t, r, line);
    expect((await readdir(join(r, '.edgectl'))).includes('lock')).toBe(false);
  });
});

describe('Kong diff by entity', () => {
  it('reports added/changed/removed entities with changed fields, secrets redacted by position', () => {
    const a = `_format_version: "3.0"\nservices:\n- name: s1\n  host: a.internal\n  port: 80\n  routes:\n  - name: r1\n    paths: [/v1]\n  plugins:\n  - name: rate-limiting\n    config: { second: 10 }\nconsumers:\n- username: pos\n  keyauth_credentials:\n  - id: k1\n    key: old-plain-key\n`;
    const b = `_format_version: "3.0"\nservices:\n- name: s1\n  host: b.internal\n  port: 80\n  routes:\n  - name: r1\n    paths: [/v1, /v2]\n  plugins:\n  - name: rate-limiting\n    config: { second: 20 }\n- name: s2\n  host: c.internal\nconsumers:\n- username: pos\n  keyauth_credentials:\n  - id: k1\n    key: "not-a-secret-looking-value"\n`;
    const d = kongDiff(a, b);
    const by = (k: string, n: string) => d.find((x) => x.kind === k && x.name === n);
    expect(by('services', 's1')).toMatchObject({ change: 'changed', fields: [{ field: 'host', old: 'a.internal', new: 'b.internal' }] });
    expect(by('routes', 's1 > r1')?.fields).toEqual([{ field: 'paths', old: ['/v1'], new: ['/v1', '/v2'] }]);
    expect(by('plugins', 's1 > rate-limiting')?.fields).toEqual([{ field: 'config.second', old: 10, new: 20 }]);
    expect(by('services', 's2')?.change).toBe('added');
    const key = by('keyauth_credentials', 'pos > k1')!;
    expect(key.fields).toEqual([{ field: 'key', old: '(redacted)', new: '(redacted)', redacted: true }]);
    expect(JSON.stringify(d)).not.toContain('old-plain-key');
    expect(JSON.stringify(d)).not.toContain('not-a-secret-looking-value');
    expect(kongDiff(b, a).find((x) => x.name === 's2')?.change).toBe('removed');
  });
});
