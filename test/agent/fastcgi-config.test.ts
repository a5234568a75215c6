import { mkdir, mkdtemp, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentConfigSchema, fastcgiAppSchema } from '../../src/lib/bundle/agent-json.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet } from '../../src/lib/render/index.js';
import { DEFAULT_BACKOFF, nextStart } from '../../src/lib/agent/fastcgi/backoff.js';
import { workerNames } from '../../src/lib/agent/fastcgi/nginx-user.js';
import { appPath, spawnPlan } from '../../src/lib/agent/fastcgi/spawn-plan.js';
import { cleanTemps, exampleCopy, lineOf, mutate, validateDir } from '../validate/helpers.js';

/**
 * FastCGI's configuration end to end short of running it: the fleet format (errors with file,
 * line and field), agent.json's contract (hostile entries refused by the agent's own schema),
 * the payload digest (one app's change moves only its digest), the restart policy and what a
 * process is started with.
 */
afterAll(cleanTemps);

const APP = 'apps/initech.yaml';
const FCGI = 'fastcgi: { path: sites/initech-portal, index: index.php, command: [php-cgi] }';

describe('fleet format: spec.fastcgi.command and processes', { timeout: 60_000 }, () => {
  const cases: { name: string; replace: string; rule: string; path: string; message: RegExp; severity?: 'warning' }[] = [
    { name: 'an absolute program', replace: 'fastcgi: { path: sites/initech-portal, command: [/usr/bin/php-cgi] }', rule: 'invalid-value', path: 'spec.fastcgi.command[0]', message: /must not be an absolute path/ },
    { name: 'a program outside the app', replace: 'fastcgi: { path: sites/initech-portal, command: [../../bin/sh] }', rule: 'invalid-value', path: 'spec.fastcgi.command[0]', message: /must not contain "\." or "\.\." segments/ },
    { name: 'shell syntax as a program', replace: 'fastcgi: { path: sites/initech-portal, command: ["php-cgi;reboot"] }', rule: 'invalid-value', path: 'spec.fastcgi.command[0]', message: /must be a program name or relative path/ },
    { name: 'an argument with a line break', replace: 'fastcgi: { path: sites/initech-portal, command: [php-cgi, "-d\\nx"] }', rule: 'invalid-value', path: 'spec.fastcgi.command[1]', message: /must not contain a line break/ },
    { name: 'an empty command', replace: 'fastcgi: { path: sites/initech-portal, command: [] }', rule: 'invalid-value', path: 'spec.fastcgi.command', message: /must name a program/ },
    { name: 'too many processes', replace: 'fastcgi: { path: sites/initech-portal, command: [php-cgi], processes: 65 }', rule: 'out-of-range', path: 'spec.fastcgi.processes', message: /between 1 and 64/ },
    { name: 'a path program with no files shipped', replace: 'fastcgi: { command: [bin/app] }', rule: 'fastcgi-command-not-shipped', path: 'spec.fastcgi.command[0]', message: /ships no files/ },
    { name: 'no command (warning: nothing serves the app)', replace: 'fastcgi: { path: sites/initech-portal, index: index.php }', rule: 'fastcgi-no-command', path: 'spec.fastcgi', message: /starts nothing for it and nginx answers 502/, severity: 'warning' },
  ];
  for (const c of cases) {
    it(`${c.rule}: ${c.name}`, async () => {
      const dir = await exampleCopy();
      const text = await mutate(dir, APP, FCGI, c.replace);
      const r = await validateDir(dir);
      const hit = r.problems.find((p) => p.rule === c.rule && p.file === APP);
      expect(hit, JSON.stringify(r.problems, null, 1)).toBeDefined();
      expect(hit).toMatchObject({ severity: c.severity ?? 'error', path: c.path, line: lineOf(text, c.replace) });
      expect(hit!.message).toMatch(c.message);
      if (c.severity) expect(r.errors).toBe(0);
    });
  }

  it('a program on PATH, a program inside the app and bounded arguments are valid', async () => {
    const dir = await exampleCopy();
    await mutate(dir, APP, FCGI, 'fastcgi: { path: sites/initech-portal, command: [bin/my-app.fcgi, --listen-fd, "0", "a b $HOME"], processes: 64 }');
    const r = await validateDir(dir);
    expect(r.problems).toEqual([]);
  });
});

describe('agent.json fastcgi entries', () => {
  const ok = { app: 'acme.php', socket: '/var/lib/edgectl/run/fastcgi/acme.php.sock', root: '/var/lib/edgectl/current/apps/acme.php', command: ['php-cgi'], processes: 2, digest: 'a'.repeat(64) };
  it('accepts what render writes; processes defaults to 1', () => {
    expect(fastcgiAppSchema.parse(ok)).toEqual(ok);
    const { processes: _p, ...noProc } = ok;
    expect(fastcgiAppSchema.parse(noProc).processes).toBe(1);
  });
  it.each([
    ['an absolute program', { command: ['/bin/sh', '-c', 'id'] }, 'command.0'],
    ['a NUL in an argument', { command: ['php-cgi', 'a\0b'] }, 'command.1'],
    ['a socket path with ..', { socket: '/var/lib/edgectl/run/../../etc/x.sock' }, 'socket'],
    ['a socket path too long to bind', { socket: `/var/lib/${'a'.repeat(100)}.sock` }, 'socket'],
    ['a relative root', { root: 'current/apps/acme.php' }, 'root'],
    ['65 processes', { processes: 65 }, 'processes'],
    ['an app id with a path in it', { app: 'acme/../x' }, 'app'],
  ])('refuses %s', (_n, patch, where) => {
    const r = fastcgiAppSchema.safeParse({ ...ok, ...patch });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].path.join('.')).toBe(where);
  });
  it('refuses an app listed twice', () => {
    const base = { format: 'edgectl-agent/v1', node: 'n', role: 'edge', listen: '127.0.0.1:1', admin: '127.0.0.1:2', dataDir: '/d', maxMessageBytes: 10, upstreams: [], tenants: [] };
    expect(agentConfigSchema.safeParse({ ...base, fastcgi: [ok] }).success).toBe(true);
    expect(agentConfigSchema.safeParse({ ...base, fastcgi: [ok, ok] }).success).toBe(false);
  });
});

describe('the payload digest', { timeout: 60_000 }, () => {
  it('moves with the app\'s own files, command and processes, and with nothing else', async () => {
    const render = async (dir: string) => {
      const bundles = await renderFleet(await loadFleet(dir), { edgectlVersion: '0.0.0-test', nodes: ['sh-edge-02'] });
      return bundles[0].files.find((f) => f.path === 'agent/agent.json')!.data.toString();
    };
    const digestOf = async (dir: string) => JSON.parse(await render(dir)).fastcgi[0].digest as string;
    const dir = await exampleCopy();
    const a0 = await render(dir);
    const d0 = await digestOf(dir);
    expect(d0).toMatch(/^[0-9a-f]{64}$/);
    // agent.json changes (a new topic of the same app), the app's processes do not need to.
    await mutate(dir, APP, 'uplink: { topics: [meter-readings] }', 'uplink: { topics: [meter-readings, alarms] }');
    expect(await render(dir)).not.toBe(a0);
    expect(await digestOf(dir)).toBe(d0);
    await writeFile(join(dir, 'sites/initech-portal/index.php'), '<?php echo "v2";\n');
    const d1 = await digestOf(dir);
    expect(d1).not.toBe(d0);
    await mutate(dir, APP, FCGI, FCGI.replace('command: [php-cgi]', 'command: [php-cgi], processes: 3'));
    expect(await digestOf(dir)).not.toBe(d1);
  });
});

describe('restart policy', () => {
  const p = DEFAULT_BACKOFF;
  it('doubles the delay with each crash in a row, up to the cap', () => {
    let crashes = 0;
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const n = nextStart(crashes, { code: 1, uptimeMs: 10 }, p);
      crashes = n.crashes;
      delays.push(n.delayMs);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });
  it('starts over after a process stayed up; an exit 0 after serving is no crash; an exit 0 at once is', () => {
    expect(nextStart(6, { code: 1, uptimeMs: p.stableMs }, p)).toEqual({ crashes: 1, delayMs: 500 });
    expect(nextStart(3, { code: 0, signal: null, uptimeMs: 5000 }, p)).toEqual({ crashes: 3, delayMs: 0 });
    expect(nextStart(0, { code: 0, uptimeMs: 20 }, p).delayMs).toBe(500);
    expect(nextStart(0, { code: null, signal: 'SIGSEGV', uptimeMs: 5000 }, p).delayMs).toBe(500);
  });
});

describe('what a process starts with', () => {
  it('nginx workers: the user directive, else nobody with nogroup where there is no group nobody', () => {
    expect(workerNames('user www-data;\nworker_processes auto;', new Set())).toEqual({ user: 'www-data', group: 'www-data' });
    expect(workerNames('  user web  web-group ;', new Set())).toEqual({ user: 'web', group: 'web-group' });
    expect(workerNames('# user www-data;\npid run/nginx.pid;', new Set(['nogroup']))).toEqual({ user: 'nobody', group: 'nogroup' });
    expect(workerNames(undefined, new Set(['nobody']))).toEqual({ user: 'nobody', group: 'nobody' });
  });

  it('PATH without relative entries; a path program must resolve inside the app, links followed', async () => {
    expect(appPath('/usr/bin::.:bin:/bin')).toBe('/usr/bin:/bin');
    const dir = await mkdtemp(join(tmpdir(), 'ec-fcgi-plan-'));
    try {
      const app = join(dir, 'current', 'apps', 'acme.x');
      await mkdir(join(app, 'bin'), { recursive: true });
      await writeFile(join(app, 'bin', 'ok'), '#!/bin/sh\n');
      await chmod(join(app, 'bin', 'ok'), 0o755);
      await symlink('/bin/sh', join(app, 'bin', 'escape'));
      const entry = { app: 'acme.x', socket: `${dir}/x.sock`, root: app, processes: 1 };
      const plan = await spawnPlan({ ...entry, command: ['bin/ok', '-x'] });
      expect(plan).toMatchObject({ file: join(app, 'bin', 'ok'), args: ['-x'], cwd: app });
      expect(Object.keys(plan.env)).toEqual(['PATH']);
      await expect(spawnPlan({ ...entry, command: ['bin/escape'] })).rejects.toThrow(/resolves outside the app's directory/);
      await expect(spawnPlan({ ...entry, command: ['bin/none'] })).rejects.toThrow(/not found/);
      await expect(spawnPlan({ ...entry, command: ['/bin/sh'] })).rejects.toThrow(/absolute path/);
      expect((await spawnPlan({ ...entry, command: ['php-cgi'] })).file).toBe('php-cgi');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
