import { chmod, mkdtemp, readlink, rm, symlink, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { BIN } from '../helpers/paths.js';
import { freePort, freePortRange } from '../helpers/ports.js';
import { get, killNginx, nginxPid, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * Reset-to-work through the real agent process: a node whose apply died between switching
 * `current` and its health check, and whose nginx is down (power cut), comes back serving its
 * last good release when only `edgectl agent --root` starts at boot.
 */
const ADDR = '127.0.2.5';
/** b1's nginx port (local mode's port base), and the agent's listen port with its admin API on the next. */
let BASE: number;
let AGENT: number;
let dir: string;
let fleet: string;
let root: string;
let agent: ResultPromise | undefined;
const local = () => ['--fleet', fleet, '--local', root, '--local-port-base', String(BASE), '--local-port-range', '1', '--local-address', ADDR];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-boot-'));
  BASE = await freePort(ADDR);
  AGENT = await freePortRange(2, ADDR);
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: ['b1'], apps: [{ name: 'web', domain: 'www.boot.test', nodes: ['b1'], html: 'v1\n' }] });
});

afterAll(async () => {
  agent?.kill('SIGKILL');
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl agent --root (reset-to-work at boot)', { timeout: 120_000 }, () => {
  it('switches current back to good and starts nginx before serving', async () => {
    const apps: TestApp[] = [{ name: 'web', domain: 'www.boot.test', nodes: ['b1'], html: 'v1\n' }];
    { const r = await cli(['apply', ...local(), '--yes']); expect(r.code, r.stderr).toBe(0); }
    const v1 = await readlink(join(root, 'b1', 'current'));
    await writeApps(fleet, [{ ...apps[0], html: 'v2\n' }]);
    { const r = await cli(['apply', ...local(), '--yes']); expect(r.code, r.stderr).toBe(0); }
    const v2 = await readlink(join(root, 'b1', 'current'));
    expect(v2).not.toBe(v1);
    expect((await get(ADDR, BASE, 'www.boot.test')).body).toBe('v2\n');

    // The crash: a later apply switched current to another release (here: v1) and died before
    // its health check moved `good`; then the power went and nginx with it.
    await symlink(v1, join(root, 'b1', 'current.tmp'));
    await rename(join(root, 'b1', 'current.tmp'), join(root, 'b1', 'current'));
    const master = nginxPid(root, 'b1')!;
    process.kill(master, 'SIGSTOP'); // so that it cannot fork new workers while they die
    await execa('pkill', ['-KILL', '-P', String(master)], { reject: false }); // the workers, as a power cut would
    process.kill(master, 'SIGKILL');
    for (let i = 0; i < 50 && (await get(ADDR, BASE, 'www.boot.test').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    await expect(get(ADDR, BASE, 'www.boot.test')).rejects.toThrow();

    agent = execa(process.execPath, [BIN, 'agent', '--root', join(root, 'b1'), '--role', 'edge', '--node', 'b1',
      '--listen', `${ADDR}:${AGENT}`, '--admin', `${ADDR}:${AGENT + 1}`, '--data', join(dir, 'spool'),
      '--upstream', 'http://127.0.0.1:9/v1/forward'], { reject: false, env: { NO_COLOR: '1' } });
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 100 && !/"msg":"reset-to-work"/.test(log); i++) await new Promise((r) => setTimeout(r, 100));
    expect(log, log).toMatch(/"msg":"reset-to-work"/);
    const entry = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"reset-to-work"'))!);
    expect(entry).toMatchObject({ release: 'switched', nginx: 'started' });
    expect(await readlink(join(root, 'b1', 'current'))).toBe(v2);
    let served = '';
    for (let i = 0; i < 50 && served !== 'v2\n'; i++) {
      served = await get(ADDR, BASE, 'www.boot.test').then((r) => r.body, (e) => String(e));
      if (served !== 'v2\n') await new Promise((r) => setTimeout(r, 100));
    }
    expect(served).toBe('v2\n');
    // And the agent itself serves after the reset.
    for (let i = 0; i < 50; i++) {
      const ok = await fetch(`http://${ADDR}:${AGENT}/healthz`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent did not answer /healthz; log:\n${log}`);
  });

  it('nginx cannot start at boot (its port taken): the agent serves HTTPQ anyway, and the retried reset brings nginx up once the port is free', async () => {
    agent?.kill('SIGTERM');
    await agent;
    const master = nginxPid(root, 'b1');
    if (master) {
      process.kill(master, 'SIGSTOP');
      await execa('pkill', ['-KILL', '-P', String(master)], { reject: false }); // the workers hold the port too
      process.kill(master, 'SIGKILL');
    }
    for (let i = 0; i < 50 && (await get(ADDR, BASE, 'www.boot.test').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    const { createServer } = await import('node:net');
    const squatter = createServer((c) => c.destroy());
    await new Promise<void>((resolve, reject) => squatter.once('error', reject).listen(BASE, ADDR, resolve));
    agent = execa(process.execPath, [BIN, 'agent', '--root', join(root, 'b1'), '--role', 'edge', '--node', 'b1',
      '--listen', `${ADDR}:${AGENT}`, '--admin', `${ADDR}:${AGENT + 1}`, '--data', join(dir, 'spool'),
      '--upstream', 'http://127.0.0.1:9/v1/forward'], { reject: false, env: { NO_COLOR: '1', EDGECTL_RESET_RETRY_MS: '200' } });
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy = await fetch(`http://${ADDR}:${AGENT}/healthz`).then((r) => r.ok, () => false);
      if (!healthy) await new Promise((r) => setTimeout(r, 100));
    }
    expect(healthy, log).toBe(true); // the agent is up although nginx is not
    expect(log).toMatch(/"msg":"reset-to-work failed; the agent goes on and tries again"/);
    expect(log).toMatch(/Address already in use/);
    await new Promise<void>((r) => squatter.close(() => r()));
    let served = '';
    // The retries double from 200 ms: the first after the port is free comes at most the agent's
    // age later (about 2 s on an idle box, 10+ s on a loaded one): a deadline, not a count.
    for (const end = Date.now() + 40_000; Date.now() < end && served !== 'v2\n';) {
      served = await get(ADDR, BASE, 'www.boot.test').then((r) => r.body, (e) => String(e));
      if (served !== 'v2\n') await new Promise((r) => setTimeout(r, 100));
    }
    expect(served, log).toBe('v2\n');
    expect(log).toMatch(/"msg":"reset-to-work".*"nginx":"started"/);
  }, 90_000);
});
