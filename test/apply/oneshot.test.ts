import { chmod, mkdir, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { freePortRange } from '../helpers/ports.js';
import { execa } from 'execa';
import { waitFor } from '../agent/helpers.js';
import { get, killNginx, nginxPid, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * The one-round-trip activation keeps apply's guarantees: faults made on the node side (a
 * stream cut midway, an nginx that rejects or refuses, an app that fails its health check)
 * leave the node serving its previous release, with the failed one recorded as failed.
 */
const ADDR = '127.0.2.8';
let BASE: number;
let dir: string;
let fleet: string;
let root: string;
let fakeNginx: string;
const local = () => ({ root, portBase: BASE, portRange: 1, address: ADDR }); // one node: its nginx on BASE

const deps = (wrap?: (t: Transport) => Transport): FleetDeps => ({
  logger: silentLogger, now: () => new Date(), edgectlVersion: 'test',
  connect: (model: FleetModel) => {
    const c = createConnector({ model, fleetRoot: fleet, localRoot: root });
    return wrap ? { ...c, open: async (n) => wrap(await c.open(n)) } : c;
  },
});

async function apply(wrap?: (t: Transport) => Transport) {
  const p = await planFleet(deps(wrap), { fleet, local: local(), concurrency: 2, diff: false, keepConnections: true });
  try {
    const r = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: () => new Date(), states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 2 });
    return r.nodes[0];
  } finally {
    await p.connector.close();
  }
}

const current = async () => (await readlink(join(root, 'n1', 'current'))).replace('releases/', '');
const record = async (name: string) => (await readFile(join(root, 'n1', '.edgectl', 'rel', name), 'utf8')).split('\t').slice(0, 2);
const served = async () => (await get(ADDR, BASE, 'www.acme.test')).body;
/** What an activation leaves behind: staging and control directories, the stream's unused links. */
const leftovers = async () => [
  ...(await readdir(join(root, 'n1'))).filter((d) => /^\.(current|good)\.tmp/.test(d)),
  ...(await readdir(join(root, 'n1', 'releases'))).filter((d) => d.startsWith('.tmp-')),
];
let apps: TestApp[];
let html = 0;
/** A new release: the app's page changes (and with it the release). */
async function bump(extra: Partial<TestApp> = {}) {
  apps = [{ name: 'web', domain: 'www.acme.test', nodes: ['n1'], html: `v${++html}\n`, ...extra }];
  await writeApps(fleet, apps);
  return apps[0].html;
}
/** What the fake nginx does: "ok", "reject-test" (nginx -t fails), "refuse-reload" (the next reload signal fails, once). */
const nginxMode = (m: string) => writeFile(join(dir, 'nginx-mode'), m);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-oneshot-'));
  await chmod(dir, 0o755);
  BASE = await freePortRange(3, ADDR);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  fakeNginx = join(dir, 'nginx');
  // The node's nginx binary as the fleet names it: the real one, with a fault switched on from outside.
  await writeFile(fakeNginx, `#!/bin/sh
mode=$(cat ${dir}/nginx-mode 2>/dev/null)
case " $* " in
  *" -t "*) [ "$mode" = reject-test ] && { echo 'nginx: [emerg] injected by the test' >&2; exit 1; };;
  *" -s reload "*) [ "$mode" = refuse-reload ] && { echo ok >${dir}/nginx-mode; echo 'nginx: [alert] kill failed (injected)' >&2; exit 1; };;
esac
exec /usr/sbin/nginx "$@"
`, { mode: 0o755 });
  await nginxMode('ok');
  await writeTestFleet(fleet, { nodes: ['n1'], apps: [], fleetExtra: `  defaults: { nginx: { binary: ${fakeNginx} } }\n` });
  await bump();
  expect(await apply()).toMatchObject({ outcome: 'applied', path: 'oneshot' });
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('one-round-trip activation', () => {
  it('under a umask of 077 every file gets its manifest mode and every directory 755, staged and copied alike', { timeout: 60_000 }, async () => {
    const old = process.umask(0o077);
    try {
      for (const extra of [{}, { domain: 'www.acme.test, www3.acme.test' }]) {
        await bump(extra); // the second release copies the unchanged files from the first on the node
        expect(await apply()).toMatchObject({ outcome: 'applied', path: 'oneshot' });
        const rel = join(root, 'n1', 'releases', await current());
        const manifest = JSON.parse(await readFile(join(rel, 'manifest.json'), 'utf8')) as { files: Record<string, { mode: number }> };
        const { stdout } = await execa('find', [rel, '-mindepth', '1', '-printf', '%y %m %P\\n']);
        const seen = stdout.split('\n').map((l) => l.split(' '));
        const dirs = seen.filter(([y]) => y === 'd');
        expect(dirs.length).toBeGreaterThan(0);
        for (const [, m, p] of dirs) expect(`${p} ${m}`).toBe(`${p} 755`);
        const files = seen.filter(([y]) => y === 'f');
        expect(files.length).toBeGreaterThan(2);
        for (const [, m, p] of files) expect(`${p} ${m}`).toBe(`${p} ${(p === 'manifest.json' ? 0o644 : manifest.files[p].mode).toString(8)}`);
        expect((await execa('stat', ['-c', '%a', rel])).stdout).toBe('755');
      }
    } finally {
      process.umask(old);
    }
  });

  it('a stream cut midway fails at upload: the node keeps serving its release; the next apply succeeds and cleans up', { timeout: 60_000 }, async () => {
    const before = await current();
    const page = await served();
    const next = await bump({ html: 'x'.repeat(200_000) + '\n' });
    const cut = (t: Transport): Transport => ({
      node: t.node, root: t.root, readFile: (p) => t.readFile(p), stat: (p) => t.stat(p), http: (r) => t.http(r), writeFiles: (f) => t.writeFiles(f), close: () => t.close(),
      exec: (a, o) => (a[0] === 'bash' && Buffer.isBuffer(o?.input) ? t.exec(a, { ...o, input: o.input.subarray(0, o.input.length >> 1) }) : t.exec(a, o)),
    });
    const r = await apply(cut);
    expect(r).toMatchObject({ outcome: 'failed', step: 'upload', path: 'oneshot' });
    expect(r.output).toMatch(/tar/i);
    expect(await current()).toBe(before);
    expect(await served()).toBe(page);
    expect(await readdir(join(root, 'n1', '.edgectl'))).not.toContain('lock'); // unlocked on the way out
    // A power cut after the stream's links were made (no run left to remove them): the next run does.
    await symlink(`releases/${before}`, join(root, 'n1', '.current.tmp-0badf00d'));
    await symlink(`releases/${before}`, join(root, 'n1', '.good.tmp-0badf00d'));
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    expect(await served()).toBe(next);
    expect(await leftovers()).toEqual([]);
  });

  it('a stream cut after its links but before its end: failed at upload, the links removed on the way out', { timeout: 60_000 }, async () => {
    const before = await current();
    await bump();
    // The last 2,560 bytes: the staging directory's last entry, the end marker (header and data) and the archive's two end blocks.
    const cut = (t: Transport): Transport => ({
      node: t.node, root: t.root, readFile: (p) => t.readFile(p), stat: (p) => t.stat(p), http: (r) => t.http(r), writeFiles: (f) => t.writeFiles(f), close: () => t.close(),
      exec: (a, o) => (a[0] === 'bash' && Buffer.isBuffer(o?.input) ? t.exec(a, { ...o, input: o.input.subarray(0, o.input.length - 2560) }) : t.exec(a, o)),
    });
    expect(await apply(cut)).toMatchObject({ outcome: 'failed', step: 'upload' });
    expect(await current()).toBe(before);
    expect((await readdir(join(root, 'n1'))).filter((d) => /^\.(current|good)\.tmp/.test(d))).toEqual([]);
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    expect(await leftovers()).toEqual([]);
  });

  it('nginx -t rejects the release: nothing switched, the release recorded as failed at validate, nginx\'s words reported', { timeout: 60_000 }, async () => {
    const before = await current();
    const page = await served();
    await bump();
    await nginxMode('reject-test');
    try {
      const r = await apply();
      expect(r).toMatchObject({ outcome: 'failed', step: 'validate', reloads: 0 });
      expect(r.output).toContain('injected by the test');
      expect(await current()).toBe(before);
      expect(await served()).toBe(page);
      expect(await record(r.to!)).toEqual(['failed', 'validate']);
      expect(await leftovers()).toEqual([]);
    } finally {
      await nginxMode('ok');
    }
  });

  it('a reload nginx refuses: switched back to the previous release, which serves; recorded failed at reload', { timeout: 60_000 }, async () => {
    const before = await current();
    const page = await served();
    // A second domain: the nginx config changes, so this activation must reload.
    await bump({ domain: 'www.acme.test, www2.acme.test' });
    await nginxMode('refuse-reload');
    try {
      const r = await apply();
      expect(r).toMatchObject({ outcome: 'rolled-back', step: 'reload' });
      expect(r.notes).toContain(`rolled back to ${before}`);
      expect(r.output).toContain('kill failed (injected)');
      expect(await current()).toBe(before);
      expect(await record(r.to!)).toEqual(['failed', 'reload']);
    } finally {
      await nginxMode('ok');
    }
    expect(await served()).toBe(page);
  });

  it('a page-only change keeps nginx\'s config: current switched, no reload (the same workers serve the new page)', { timeout: 60_000 }, async () => {
    const workers = async () => (await execa('pgrep', ['-P', String(nginxPid(root, 'n1'))])).stdout.split('\n').sort();
    const before = await workers();
    const page = await bump();
    const r = await apply();
    expect(r).toMatchObject({ outcome: 'applied', reloads: 0 });
    expect(await served()).toBe(page);
    // No new worker (old ones of an earlier test's reload may still be leaving).
    expect((await workers()).filter((w) => !before.includes(w))).toEqual([]);
    // A config change still reloads: new workers.
    await bump({ domain: 'www.acme.test, www3.acme.test' });
    expect(await apply()).toMatchObject({ outcome: 'applied', reloads: 1 });
    await waitFor(async () => !(await workers()).some((w) => before.includes(w)), 10_000, 'new workers after the reload');
  });

  it('an app that fails its health check: rolled back, the previous release serves, recorded failed at health', { timeout: 60_000 }, async () => {
    const before = await current();
    const page = await served();
    await bump({ healthCheck: { path: '/no-such-page', expectStatus: 200 } });
    const r = await apply();
    expect(r).toMatchObject({ outcome: 'rolled-back', step: 'health' });
    expect(r.output).toMatch(/www\.acme\.test: GET \/no-such-page \(Host: www\.acme\.test\) answered 404, expected 200/);
    expect(await current()).toBe(before);
    expect(await served()).toBe(page);
    expect(await record(r.to!)).toEqual(['failed', 'health']);
    expect(await readdir(join(root, 'n1', '.edgectl'))).not.toContain('intent.json');
  });

  it('a node locked by someone else is refused naming the holder, and nothing changes', { timeout: 60_000 }, async () => {
    const before = await current();
    await bump();
    const lock = join(root, 'n1', '.edgectl', 'lock');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(lock);
    await writeFile(join(lock, 'holder'), JSON.stringify({ holder: 'ops@elsewhere', pid: 1, host: 'elsewhere.example', op: 'edgectl apply', since: new Date().toISOString(), expires: new Date(Date.now() + 600_000).toISOString(), id: 'abc123' }) + '\n');
    try {
      const r = await apply();
      expect(r).toMatchObject({ outcome: 'locked', code: 'EDGECTL_LOCKED' });
      expect(r.cause).toContain('ops@elsewhere');
      expect(await current()).toBe(before);
    } finally {
      await rm(lock, { recursive: true });
    }
    expect(await apply()).toMatchObject({ outcome: 'applied' });
  });
});

describe('rollback after a failed apply, and history', () => {
  it('rollback goes to the release that was good before current, never to the one nginx -t refused', { timeout: 60_000 }, async () => {
    const { rollbackFleet } = await import('../../src/lib/apply/rollback-fleet.js');
    const { historyFleet } = await import('../../src/lib/apply/history-fleet.js');
    await bump();
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    const older = await current();
    const page = await served();
    await bump();
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    const good = await current();
    await bump();
    await nginxMode('reject-test');
    let failed: string;
    try {
      const r = await apply();
      expect(r).toMatchObject({ outcome: 'failed', step: 'validate' });
      failed = r.to!;
    } finally {
      await nginxMode('ok');
    }
    expect(await current()).toBe(good);
    const [h] = await historyFleet(deps(), { fleet, local: local(), nodes: ['n1'], concurrency: 1 });
    expect(h.releases[0]).toMatchObject({ release: failed, result: 'failed', failedAt: 'validate', current: false });
    expect(h.releases.find((e) => e.release === good)).toMatchObject({ result: 'good', current: true, good: true });
    const [rb] = await rollbackFleet(deps(), { fleet, local: local(), nodes: ['n1'], concurrency: 1 });
    expect(rb, rb.cause).toMatchObject({ outcome: 'applied', to: older, path: 'oneshot' });
    expect(await current()).toBe(older);
    expect(await served()).toBe(page);
    // --to takes a unique digest prefix; one that matches nothing says what the node has.
    const [none] = await rollbackFleet(deps(), { fleet, local: local(), nodes: ['n1'], concurrency: 1, to: 'fffffff' });
    expect(none.cause).toMatch(/no release on the node matches fffffff \(releases: .*failed/);
    const [back] = await rollbackFleet(deps(), { fleet, local: local(), nodes: ['n1'], concurrency: 1, to: good.slice(0, 9) });
    expect(back).toMatchObject({ outcome: 'applied', to: good });
  });
});

describe('a saved plan applied twice', () => {
  it('the second time, the node already at the plan\'s target is unchanged, not a stale failure; a node moved elsewhere is stale', { timeout: 60_000 }, async () => {
    const { serialisePlan } = await import('../../src/lib/plan/file.js');
    const { openSavedPlan } = await import('../../src/lib/apply/index.js');
    await bump();
    const p = await planFleet(deps(), { fleet, local: local(), concurrency: 1, diff: false });
    await p.connector.close();
    const file = join(dir, 'saved.plan.json');
    await writeFile(file, serialisePlan(p.plan, p.blobs));
    const applySaved = async (stepByStep = false) => {
      const o = await openSavedPlan(deps(), await readFile(file, 'utf8'), file, fleet, local());
      try {
        return (await applyPlan(o.plan, o.bundles, { connector: o.connector, logger: silentLogger, now: () => new Date(), stepByStep }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 1 })).nodes[0];
      } finally {
        await o.connector.close();
      }
    };
    expect(await applySaved()).toMatchObject({ outcome: 'applied' });
    expect(await applySaved()).toMatchObject({ outcome: 'unchanged', step: 'done' });
    expect(await applySaved(true)).toMatchObject({ outcome: 'unchanged', step: 'done' });
    await bump();
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    expect(await applySaved()).toMatchObject({ outcome: 'stale', code: 'EDGECTL_PLAN_STALE' });
  });
});

describe('the health gate with no healthCheck in the fleet', () => {
  const docs = (extra: string) => writeFile(join(fleet, 'apps.yaml'), `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: web }\nspec:\n  tenant: acme\n  type: static\n  domains: [www.acme.test]\n  static: { path: sites/web }\n  placement: { nodes: [n1] }\n${extra}`);

  it('a static app whose page nginx cannot serve (no index at its root) is rolled back; its /healthz alone passed', { timeout: 60_000 }, async () => {
    await bump();
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    const before = await current();
    const page = await served();
    await rm(join(fleet, 'sites', 'web', 'index.html'));
    await writeFile(join(fleet, 'sites', 'web', 'about.html'), 'about\n');
    await docs('');
    const r = await apply();
    expect(r, r.output).toMatchObject({ outcome: 'rolled-back', step: 'health' });
    expect(r.output).toMatch(/GET \/ \(Host: www\.acme\.test\) answered 40[34], an answer of nginx's own/);
    expect(await current()).toBe(before);
    expect(await served()).toBe(page);
  });

  it('a FastCGI app whose php-cgi is down (502) is reported, not rolled back', { timeout: 60_000 }, async () => {
    await bump();
    await writeFile(join(fleet, 'sites', 'web', 'index.php'), '<?php echo "hi";\n');
    await docs(`---\napiVersion: edgectl/v1\nkind: App\nmetadata: { name: portal }\nspec:\n  tenant: acme\n  type: fastcgi\n  domains: [portal.acme.test]\n  fastcgi: { path: sites/web, index: index.php }\n  placement: { nodes: [n1] }\n`);
    const r = await apply();
    expect(r, r.output).toMatchObject({ outcome: 'applied' });
    expect(r.notes.join('\n')).toMatch(/portal\.acme\.test: GET \/ \(Host: portal\.acme\.test\) answered 50[24]: its upstream is down/);
  });
});

describe('the clock', () => {
  it('what apply writes on the node (release record, lock holder) carries the clock it was given', { timeout: 60_000 }, async () => {
    const fixed = new Date('2030-01-02T03:04:05.000Z');
    await bump();
    const p = await planFleet(deps(), { fleet, local: local(), concurrency: 1, diff: false, keepConnections: true });
    try {
      const r = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: () => fixed, states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 1 });
      expect(r.nodes[0]).toMatchObject({ outcome: 'applied' });
      expect(r.startedAt).toBe(fixed.toISOString());
      const line = await readFile(join(root, 'n1', '.edgectl', 'rel', r.nodes[0].to!), 'utf8');
      expect(line.split('\t').slice(0, 3)).toEqual(['good', '', fixed.toISOString()]);
    } finally {
      await p.connector.close();
    }
  });
});

describe('a file the new release would copy from current was edited on the node', () => {
  it('the checksum catches it, every byte is sent again in a second exec, and the new release is right', { timeout: 60_000 }, async () => {
    await bump();
    expect(await apply()).toMatchObject({ outcome: 'applied' });
    const mime = join(root, 'n1', 'current', 'nginx', 'mime.types');
    const good = await readFile(mime, 'utf8');
    await writeFile(mime, good + '# edited on the node\n');
    await bump();
    const r = await apply();
    expect(r).toMatchObject({ outcome: 'applied', path: 'oneshot', turns: 2 });
    expect(r.transfer.files).toBeGreaterThan(3); // the first try sent 2 (page and manifest), the retry everything
    expect(await readFile(mime, 'utf8')).toBe(good); // current is the new release now: its copy is the rendered one
  });
});

describe('two applies planned against the same node state', () => {
  it('the one that comes second finds the release already there and the node at its target: unchanged', { timeout: 60_000 }, async () => {
    await bump();
    const a = await planFleet(deps(), { fleet, local: local(), concurrency: 1, diff: false, keepConnections: true });
    const b = await planFleet(deps(), { fleet, local: local(), concurrency: 1, diff: false, keepConnections: true });
    const run = async (p: typeof a) => {
      try {
        return (await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: () => new Date(), states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 1 })).nodes[0];
      } finally {
        await p.connector.close();
      }
    };
    expect(await run(a)).toMatchObject({ outcome: 'applied' });
    // b's plan read the node before a applied: it would stage a release that is now current.
    expect(await run(b)).toMatchObject({ outcome: 'unchanged', step: 'done', path: 'oneshot' });
  });
});

describe('a lock left by a holder that died', () => {
  it('is broken once it has expired, and the apply goes on in the same run', { timeout: 60_000 }, async () => {
    await bump();
    const lock = join(root, 'n1', '.edgectl', 'lock');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(lock);
    await writeFile(join(lock, 'holder'), JSON.stringify({ holder: 'ops@elsewhere', pid: 1, host: 'elsewhere.example', op: 'edgectl apply', since: '2026-01-01T00:00:00.000Z', expires: '2026-01-01T00:05:00.000Z', id: 'dead01' }) + '\n');
    const r = await apply();
    expect(r, r.cause).toMatchObject({ outcome: 'applied', path: 'oneshot', turns: 3 }); // refused, lock broken, applied
    expect(await readdir(join(root, 'n1', '.edgectl'))).not.toContain('lock');
  });
});

describe('the last sync fails (an I/O error as good is made durable)', () => {
  it('is reported failed at good, the lock is released on the way, and the next apply finds the node at its target', { timeout: 60_000 }, async () => {
    const bin = join(dir, 'failing-sync');
    await mkdir(bin, { recursive: true });
    // Only the final sync (good and the intent's removal) fails; every earlier one is the real one.
    await writeFile(join(bin, 'sync'), `#!/bin/sh
[ "$*" = "-- . .edgectl" ] && { echo 'sync: error syncing .: Input/output error' >&2; exit 1; }
exec /usr/bin/sync "$@"
`, { mode: 0o755 });
    const page = await bump();
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    let r;
    try {
      r = await apply();
    } finally {
      process.env.PATH = path;
    }
    expect(r).toMatchObject({ outcome: 'failed', step: 'good', cause: 'marking the release good failed' });
    expect(await readdir(join(root, 'n1', '.edgectl'))).not.toContain('lock');
    expect(await current()).toBe(r.to);
    expect(await served()).toBe(page);
    expect(await leftovers()).toEqual([]);
    expect(await apply()).toMatchObject({ outcome: 'unchanged' });
  });
});
