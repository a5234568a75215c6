import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { NGINX_WORKERS_FN } from '../../src/lib/release/remote.js';
import { createConnector, type Connector } from '../../src/lib/transport/connect.js';
import { freePortRange } from '../helpers/ports.js';
import { signal } from '../helpers/lab-util.js';
import { get, killNginx, nginxPid, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * nginx's graceful reload: the master starts new workers, then tells the old ones to quit. Until
 * an old worker takes that signal it still accepts new connections and answers them with the old
 * config, so a gate that stops at the first answer with the new config id (a new worker's) let
 * apply return while a client could still meet the old config (a test saw the old certificate
 * once right after apply). The gate now also waits until every old worker has stopped taking
 * connections. An old worker held with SIGSTOP cannot take its quit signal: the wait must see it.
 */
const ADDR = '127.0.2.43';
let dir: string;

const workersOf = async (master: number): Promise<number[]> => {
  const kids = (await readFile(`/proc/${master}/task/${master}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
  const out: number[] = [];
  for (const k of kids) if ((await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '')).startsWith('nginx: worker process')) out.push(k);
  return out;
};
const title = (pid: number) => readFile(`/proc/${pid}/cmdline`, 'utf8').then((s) => s.replace(/\0+$/, '').replace(/\0/g, ' '), () => 'gone');
/** The shared functions in sh (dash), as the step-by-step path runs them. */
const sh = (script: string, ...args: string[]) => {
  try {
    return { code: 0, out: execFileSync('sh', ['-c', `${NGINX_WORKERS_FN}\n${script}`, 'sh', ...args], { encoding: 'utf8' }) };
  } catch (e) {
    const x = e as { status: number; stdout: string };
    return { code: x.status, out: x.stdout };
  }
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-reload-workers-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  if (dir) for (const r of ['', 'one-shot', 'step-by-step']) await killNginx(join(dir, 'nodes', r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the old workers of a reload', { timeout: 120_000 }, () => {
  it('nginx_workers lists the workers that take connections (not one shutting down); workers_quit waits for each, and names one that does not quit', async () => {
    const port = await freePortRange(1, ADDR);
    const root = join(dir, 'bare');
    await mkdir(join(root, 'run'), { recursive: true });
    const conf = (v: string) => `worker_processes 2; pid ${root}/run/nginx.pid; error_log ${root}/error.log;\nevents {}\nhttp { access_log off; server { listen ${ADDR}:${port}; location / { return 200 "${v}\\n"; } } }\n`;
    await writeFile(join(root, 'nginx.conf'), conf('a'));
    execFileSync('nginx', ['-p', `${root}/`, '-c', join(root, 'nginx.conf')]);
    await mkdir(join(dir, 'nodes', 'bare', 'run'), { recursive: true }); // killNginx finds it here
    const master = Number((await readFile(join(root, 'run', 'nginx.pid'), 'utf8')).trim());
    await writeFile(join(dir, 'nodes', 'bare', 'run', 'nginx.pid'), `${master}\n`);
    let first: number[] = [];
    for (let i = 0; i < 50 && first.length < 2; i++) {
      first = await workersOf(master);
      if (first.length < 2) await new Promise((r) => setTimeout(r, 20));
    }
    expect(first).toHaveLength(2);
    expect(sh('nginx_workers "$1"; echo "$nw"', String(master)).out.trim().split(' ').map(Number).sort()).toEqual([...first].sort());
    // Where the kernel has no children file, the scan of /proc finds the same children.
    const kids = (await readFile(`/proc/${master}/task/${master}/children`, 'utf8')).trim().split(/\s+/).map(Number).sort();
    expect(sh('children_scan "$1"; echo $_nwc', String(master)).out.trim().split(' ').map(Number).sort()).toEqual(kids);

    // One old worker holds a half-sent request (not idle: it stays "shutting down" after the
    // reload); the other is stopped, so it cannot take its quit signal.
    const held: Socket[] = [];
    for (let i = 0; i < 8; i++) {
      const s = connect(port, ADDR);
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      s.write('GET / HTTP/1.1\r\nHost: x\r\n');
      held.push(s);
    }
    await new Promise((r) => setTimeout(r, 200)); // accepted by the old workers before one stops
    const stopped = first[1];
    signal(stopped, 'SIGSTOP');
    try {
      await writeFile(join(root, 'nginx.conf'), conf('b'));
      execFileSync('nginx', ['-p', `${root}/`, '-c', join(root, 'nginx.conf'), '-s', 'reload'], { stdio: 'pipe' });
      let body = '';
      for (let i = 0; i < 100 && body !== 'b\n'; i++) body = (await get(ADDR, port, 'x').catch(() => ({ body: '' }))).body;
      expect(body).toBe('b\n');
      const q = sh('workers_quit 10 "$@" && echo all || echo "still $_wqp"', ...first.map(String));
      expect(q.out.trim()).toBe(`still ${stopped}`);
      expect(await title(stopped)).toBe('nginx: worker process');
    } finally {
      signal(stopped, 'SIGCONT');
    }
    expect(sh('workers_quit 100 "$@" && echo all || echo "still $_wqp"', ...first.map(String)).out.trim()).toBe('all');
    // A worker that holds a request is still there, shutting down: not one that takes connections.
    const lingering = [];
    for (const p of first) if ((await title(p)) !== 'gone') lingering.push(await title(p));
    const now = sh('nginx_workers "$1"; echo "$nw"', String(master)).out.trim().split(' ').map(Number);
    expect(now).toHaveLength(2);
    for (const p of now) expect(first).not.toContain(p);
    // The worker(s) that took the held connections are still there, shutting down.
    expect(lingering.length).toBeGreaterThanOrEqual(1);
    for (const t of lingering) expect(t).toBe('nginx: worker process is shutting down');
    for (const s of held) s.destroy();
  });

  for (const path of ['one-shot', 'step-by-step'] as const) {
    it(`apply (${path}) returns once no old worker takes connections, and notes one that still does after 5 s`, async () => {
      const fleet = join(dir, `fleet-${path}`);
      const root = join(dir, 'nodes', path);
      const node = 'n1';
      const local = { root, portBase: await freePortRange(3, ADDR), portRange: 1, address: ADDR };
      let apps: TestApp[] = [{ name: 'web', domain: 'www.acme.test', nodes: [node], html: 'v1\n' }];
      await writeTestFleet(fleet, { nodes: [node], apps });
      const d: FleetDeps = {
        logger: silentLogger, now: () => new Date(), edgectlVersion: 'test',
        connect: (model: FleetModel): Connector => createConnector({ model, fleetRoot: fleet, localRoot: root }),
      };
      const apply = async () => {
        const planned = await planFleet(d, { fleet, local, concurrency: 1, diff: false });
        try {
          return await applyPlan(planned.plan, bundlesOf(planned), { connector: planned.connector, logger: silentLogger, now: d.now, stepByStep: path === 'step-by-step' }, { canary: 0, batch: '100%', maxFailures: '100%', concurrency: 1 });
        } finally {
          await planned.connector.close();
        }
      };
      expect((await apply()).summary.applied).toBe(1);
      const master = nginxPid(root, node)!;
      // A new domain is a new nginx config: each apply below reloads.
      const change = async (v: number) => {
        apps = [{ ...apps[0], domain: `v${v}.acme.test`, html: `v${v}\n` }];
        await writeApps(fleet, apps);
      };

      await change(2);
      const t0 = Date.now();
      const r2 = await apply();
      const clean = Date.now() - t0;
      expect(r2.nodes[0], r2.nodes[0].output).toMatchObject({ outcome: 'applied', reloads: 1 });
      expect(r2.nodes[0].notes.join('\n')).not.toMatch(/old nginx worker/);
      // Every worker taking connections now is a new one: the first request meets the new config.
      expect(await get(ADDR, local.portBase, 'v2.acme.test')).toMatchObject({ status: 200, body: 'v2\n' });

      const held = (await workersOf(master))[0];
      signal(held, 'SIGSTOP');
      let r3;
      const t1 = Date.now();
      try {
        await change(3);
        r3 = await apply();
      } finally {
        signal(held, 'SIGCONT');
      }
      const waited = Date.now() - t1;
      expect(r3.nodes[0], r3.nodes[0].output).toMatchObject({ outcome: 'applied' });
      expect(r3.nodes[0].notes).toContain(`an old nginx worker (pid ${held}) still took connections 5 s after the reload`);
      expect(waited).toBeGreaterThanOrEqual(4500);
      expect(clean, 'a reload whose old workers quit at once does not wait').toBeLessThan(waited - 2000);
      // The released worker takes its signal and quits: nothing of the old config remains.
      for (let i = 0; i < 100 && (await title(held)) !== 'gone'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await title(held)).toBe('gone');
      expect(await get(ADDR, local.portBase, 'v3.acme.test')).toMatchObject({ status: 200, body: 'v3\n' });
    });
  }
});
