import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { procStat } from '../../src/lib/agent/fastcgi/proc.js';
import { cli } from '../helpers/cli.js';
import { BIN, REPO } from '../helpers/paths.js';
import { freePort, freePortRange } from '../helpers/ports.js';
import { get, killNginx, nginxPid } from '../apply/helpers.js';
import { untilValue } from './helpers.js';

/**
 * FastCGI apps on a node, through the real parts: a fleet rendered and applied by edgectl in
 * local mode (real nginx), the bundled agent as systemd runs it (`edgectl-agent.cjs --root`),
 * real /usr/bin/php-cgi behind nginx's fastcgi_pass, an app that keeps crashing, SIGHUP
 * reloads after a release switch, and an agent killed outright whose php-cgi outlives it.
 */
const ADDR = '127.0.2.61';
const BUNDLE = join(REPO, 'dist', 'agent', 'edgectl-agent.cjs');
let BASE: number; // nginx; the agent listens on BASE + 1, its admin API on BASE + 2
let dir: string;
let fleet: string;
let nodes: string;
let root: string;
let agent: ResultPromise | undefined;
let log = '';
const seen = new Set<number>(); // every php-cgi pid seen, killed in afterAll if still there

interface App { app: string; state: string; pids: number[]; restarts: number; backoffMs?: number; keeper?: number; lastExit: { code: number | null; crash: boolean; uptimeMs: number } | null }
interface Status { config: string; fastcgi: App[]; reload: { at: string; outcome: string; agent?: string; fastcgi?: { restarted: string[]; unchanged: string[] }; error?: string } | null }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function writeFleet(o: { php: string; topics: string[] }): Promise<void> {
  await mkdir(join(fleet, 'sites', 'php'), { recursive: true });
  await mkdir(join(fleet, 'sites', 'php2'), { recursive: true });
  await mkdir(join(fleet, 'sites', 'web'), { recursive: true });
  await writeFile(join(fleet, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n');
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeFile(join(fleet, 'nodes.yaml'), 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: f1 }\nspec: { role: edge, address: 192.0.2.1 }\n');
  await writeFile(join(fleet, 'sites', 'php', 'index.php'), `<?php echo "${o.php} ", getmypid(), "\\n";\n`);
  await writeFile(join(fleet, 'sites', 'php2', 'index.php'), '<?php echo "two ", getmypid(), "\\n";\n');
  await writeFile(join(fleet, 'sites', 'web', 'index.html'), 'web\n');
  const app = (name: string, spec: string) => `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  tenant: acme\n  domains: [${name}.fcgi.test]\n  placement: { nodes: [f1] }\n${spec}`;
  await writeFile(join(fleet, 'apps.yaml'), [
    app('php', '  type: fastcgi\n  fastcgi: { path: sites/php, command: [php-cgi], processes: 2 }\n'),
    app('php2', '  type: fastcgi\n  fastcgi: { path: sites/php2, command: [php-cgi] }\n'),
    // php-cgi ends itself after 3 requests: a normal exit, not a crash.
    app('php3', '  type: fastcgi\n  fastcgi: { path: sites/php2, command: [env, PHP_FCGI_MAX_REQUESTS=3, php-cgi] }\n'),
    app('crash', '  type: fastcgi\n  fastcgi: { command: ["false"] }\n'),
    app('web', `  type: static\n  static: { path: sites/web }\n  uplink: { topics: [${o.topics.join(', ')}] }\n`),
  ].join('---\n'));
}

async function apply(): Promise<void> {
  const r = await cli(['apply', '--fleet', fleet, '--local', nodes, '--local-port-base', String(BASE), '--local-port-range', '1', '--local-address', ADDR, '--yes']);
  expect(r.code, r.stderr).toBe(0);
}

function startAgent(): void {
  agent = execa(process.execPath, [BUNDLE, '--root', root, '--nginx-binary', '/usr/sbin/nginx'], { reject: false, env: { NO_COLOR: '1' } });
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
}

async function healthz(): Promise<{ ok: boolean; config: string | null; fastcgi: { apps: number; running: number; backoff: number } | null }> {
  return (await fetch(`http://${ADDR}:${BASE + 1}/healthz`)).json() as never;
}

const until = <T>(what: string, f: () => Promise<T | undefined | false>, ms?: number): Promise<T> => untilValue(what, f, () => log, ms);

async function status(): Promise<Status> {
  const token = (await readFile(join(root, 'spool', 'admin-token'), 'utf8')).trim();
  const r = await fetch(`http://${ADDR}:${BASE + 2}/status`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`status ${r.status}`);
  const s = (await r.json()) as Status;
  for (const a of s.fastcgi) if (a.app !== 'acme.crash') for (const p of a.pids) seen.add(p);
  return s;
}

const appOf = (s: Status, app: string) => s.fastcgi.find((a) => a.app === app)!;
const currentConfigDigest = async () => sha(await readFile(join(root, 'current', 'agent', 'agent.json')));
const agentPid = async () => Number((await readFile(join(root, 'run', 'agent.pid'), 'utf8')).trim());
const alive = (pid: number) => procStat(pid) !== undefined;

/** apply, which sends the agent SIGHUP itself and waits for its /healthz to show the new agent.json: the reload it caused. */
async function applied(): Promise<Status> {
  const before = (await status()).reload?.at;
  await apply();
  const s = await status();
  expect(s.reload?.at, 'apply reloaded the agent').not.toBe(before);
  return s;
}

/** Sends SIGHUP by hand, and waits for the reload it causes to be reported. */
async function hup(): Promise<Status> {
  const before = (await status()).reload?.at;
  process.kill(await agentPid(), 'SIGHUP');
  return until('the reload', async () => {
    const s = await status();
    return s.reload && s.reload.at !== before ? s : undefined;
  });
}

async function php(app = 'php'): Promise<{ status: number; body: string }> {
  return get(ADDR, BASE, `${app}.fcgi.test`, '/index.php');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-fcgi-'));
  await chmod(dir, 0o755); // nginx's workers (nobody) pass through to the node's files and sockets
  BASE = await freePortRange(3, ADDR);
  fleet = join(dir, 'fleet');
  nodes = join(dir, 'nodes');
  root = join(nodes, 'f1');
  await writeFleet({ php: 'v1', topics: ['t1'] });
  await apply();
  startAgent();
  await until('the agent', async () => (await healthz()).ok);
}, 120_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await Promise.race([agent, sleep(10_000)]);
  }
  for (const p of seen) if (alive(p)) process.kill(p, 'SIGKILL');
  if (nodes) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('FastCGI apps supervised by the agent', { timeout: 120_000 }, () => {
  it('php-cgi serves a PHP page through nginx, two processes on one socket only nginx\'s workers may use', async () => {
    const s = await until('php running', async () => {
      const st = await status();
      return appOf(st, 'acme.php').state === 'running' && appOf(st, 'acme.php').pids.length === 2 ? st : undefined;
    });
    const pids = appOf(s, 'acme.php').pids;
    const served = new Set<number>();
    for (let i = 0; i < 30; i++) {
      const r = await php();
      expect(r.status, r.body).toBe(200);
      expect(r.body).toMatch(/^v1 \d+\n$/);
      served.add(Number(r.body.split(' ')[1]));
    }
    expect([...served].every((p) => pids.includes(p))).toBe(true);
    const sock = await stat(join(root, 'run', 'fastcgi', 'acme.php.sock'));
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o660); // root and nginx's workers' group (nogroup here), nobody else
    expect(sock.gid).toBe(65534);
    const h = await healthz();
    expect(h.config).toBe(await currentConfigDigest());
    expect(s.config).toBe(h.config);
    expect(h.fastcgi).toMatchObject({ apps: 4 });
    // Only what agent.json says runs: php-cgi with no argument (the socket is its fd 0).
    const cmdline = (await readFile(`/proc/${pids[0]}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    expect(cmdline).toEqual(['php-cgi']);
    // Tenant code does not run as root: as nginx's workers (nobody), without root's groups.
    const proc = await readFile(`/proc/${pids[0]}/status`, 'utf8');
    expect(proc).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    expect(proc).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
    expect(proc).toMatch(/^Groups:\s*$/m);
  });

  it('an app that keeps crashing: the delay grows, /status says so, the other apps still answer', async () => {
    const first = await until('two crashes', async () => {
      const a = appOf(await status(), 'acme.crash');
      return a.restarts >= 2 ? a : undefined;
    });
    const later = await until('two more crashes', async () => {
      const a = appOf(await status(), 'acme.crash');
      return a.restarts >= first.restarts + 2 ? a : undefined;
    }, 20_000);
    expect(later.state).toBe('backoff');
    expect(later.backoffMs).toBeGreaterThan(first.backoffMs!);
    expect(later.lastExit).toMatchObject({ code: 1, crash: true });
    expect((await healthz()).fastcgi).toMatchObject({ backoff: 1 });
    const token = (await readFile(join(root, 'spool', 'admin-token'), 'utf8')).trim();
    const metrics = await (await fetch(`http://${ADDR}:${BASE + 2}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    expect(metrics).toMatch(/^edgectl_fastcgi_up\{app="acme.crash"\} 0$/m);
    expect(metrics).toMatch(/^edgectl_fastcgi_up\{app="acme.php"\} 1$/m);
    expect(metrics).toMatch(/^edgectl_fastcgi_restarts_total\{app="acme.crash"\} [1-9]\d*$/m);
    const s = await status();
    expect(appOf(s, 'acme.php')).toMatchObject({ state: 'running', restarts: 0 });
    expect((await php()).status).toBe(200);
    expect((await php('php2')).status).toBe(200);
  });

  it('a process that ends itself after serving (PHP_FCGI_MAX_REQUESTS) is replaced at once, not counted a crash', async () => {
    const before = appOf(await status(), 'acme.php3');
    for (let i = 0; i < 4; i++) expect((await php('php3')).status).toBe(200);
    const after = await until('php3 replaced', async () => {
      const a = appOf(await status(), 'acme.php3');
      return a.restarts > before.restarts && a.pids.length === 1 ? a : undefined;
    });
    expect(after.lastExit).toMatchObject({ code: 0, crash: false });
    expect(after.state).toBe('running');
    expect(after.pids).not.toEqual(before.pids);
  });

  it('SIGHUP after a release that changed one app\'s files: only that app\'s processes are replaced', async () => {
    const s0 = await status();
    const php2 = appOf(s0, 'acme.php2').pids;
    const old = appOf(s0, 'acme.php').pids;
    const master = nginxPid(nodes, 'f1');
    await writeFleet({ php: 'v2', topics: ['t1'] });
    const s = await applied();
    expect(s.reload).toMatchObject({ outcome: 'applied', agent: 'kept', fastcgi: { restarted: ['acme.php'] } });
    expect(s.reload!.fastcgi!.unchanged.sort()).toEqual(['acme.crash', 'acme.php2', 'acme.php3']);
    expect(s.config).toBe(await currentConfigDigest());
    expect(s.config).not.toBe(s0.config);
    const now = await until('php restarted', async () => {
      const a = appOf(await status(), 'acme.php');
      return a.state === 'running' && a.pids.length === 2 ? a : undefined;
    });
    expect(now.pids.some((p) => old.includes(p))).toBe(false);
    expect(appOf(await status(), 'acme.php2').pids).toEqual(php2);
    expect((await php()).body).toMatch(/^v2 /);
    await until('the old php-cgi to end', async () => old.every((p) => !alive(p)));
    expect(nginxPid(nodes, 'f1')).toBe(master);
  });

  it('SIGHUP after a change outside FastCGI: the agent is created again, FastCGI processes and nginx untouched', async () => {
    const s0 = await status();
    const pids = { php: appOf(s0, 'acme.php').pids, php2: appOf(s0, 'acme.php2').pids };
    const master = nginxPid(nodes, 'f1');
    await writeFleet({ php: 'v2', topics: ['t1', 't2'] });
    const s = await applied();
    expect(s.reload).toMatchObject({ outcome: 'applied', agent: 'recreated', fastcgi: { restarted: [] } });
    expect(s.config).toBe(await currentConfigDigest());
    expect(s.config).not.toBe(s0.config);
    expect((await healthz()).config).toBe(s.config);
    expect(appOf(s, 'acme.php').pids).toEqual(pids.php);
    expect(appOf(s, 'acme.php2').pids).toEqual(pids.php2);
    expect(nginxPid(nodes, 'f1')).toBe(master);
    expect((await php()).status).toBe(200);
    expect(log).toMatch(/"msg":"agent running"[\s\S]*"msg":"agent running"/); // created twice in one process
  });

  it('SIGHUP with an agent.json that does not parse: the running config stays, the failure is reported', async () => {
    const file = join(root, 'current', 'agent', 'agent.json');
    const before = await status();
    await rename(file, `${file}.orig`);
    await writeFile(file, '{"format": "edgectl-agent/v1",');
    try {
      const s = await hup();
      expect(s.reload).toMatchObject({ outcome: 'failed' });
      expect(s.reload!.error).toMatch(/not valid JSON/);
      expect(s.config).toBe(before.config);
      expect((await healthz())).toMatchObject({ ok: true, config: before.config });
      expect(appOf(s, 'acme.php').pids).toEqual(appOf(before, 'acme.php').pids);
    } finally {
      await rename(`${file}.orig`, file);
    }
  });

  it('SIGHUP with an agent.json the agent cannot open with (its port taken): the agent that ran is opened again', async () => {
    const file = join(root, 'current', 'agent', 'agent.json');
    const before = await status();
    const squat = createServer((c) => c.destroy());
    const port = await freePort(ADDR);
    await new Promise<void>((resolve, reject) => squat.once('error', reject).listen(port, ADDR, resolve));
    const text = await readFile(file, 'utf8');
    await rename(file, `${file}.orig`);
    await writeFile(file, JSON.stringify({ ...JSON.parse(text), listen: `${ADDR}:${port}` }, null, 2));
    try {
      const s = await hup();
      expect(s.reload).toMatchObject({ outcome: 'failed' });
      expect(s.reload!.error).toMatch(/cannot listen/);
      expect(s.config).toBe(before.config);
      expect(await healthz()).toMatchObject({ ok: true, config: before.config });
      expect(appOf(s, 'acme.php').pids).toEqual(appOf(before, 'acme.php').pids);
    } finally {
      await rename(`${file}.orig`, file);
      await new Promise<void>((r) => squat.close(() => r()));
    }
  });

  it('an agent.json entry that points elsewhere (socket or directory) is refused and reported, nothing made there', async () => {
    const file = join(root, 'current', 'agent', 'agent.json');
    const text = await readFile(file, 'utf8');
    const cfg = JSON.parse(text);
    const php = cfg.fastcgi.find((a: { app: string }) => a.app === 'acme.php');
    cfg.fastcgi.push(
      { ...php, app: 'acme.evil', socket: join(dir, 'elsewhere', 'acme.evil.sock'), root: join(root, 'current', 'apps', 'acme.evil') },
      { ...php, app: 'acme.evil2', socket: join(root, 'run', 'fastcgi', 'acme.evil2.sock'), root: '/usr' },
    );
    await rename(file, `${file}.orig`);
    await writeFile(file, JSON.stringify(cfg, null, 2));
    try {
      const s = await hup();
      expect(s.reload).toMatchObject({ outcome: 'applied' });
      expect(appOf(s, 'acme.evil')).toMatchObject({ state: 'stopped', pids: [] });
      expect((appOf(s, 'acme.evil') as App & { error: string }).error).toMatch(/socket must be .*run\/fastcgi\/acme\.evil\.sock/);
      expect((appOf(s, 'acme.evil2') as App & { error: string }).error).toMatch(/root must be .*current\/apps\/acme\.evil2, not \/usr/);
      await expect(stat(join(dir, 'elsewhere'))).rejects.toThrow();
      await expect(stat(join(root, 'run', 'fastcgi', 'acme.evil2.sock'))).rejects.toThrow();
    } finally {
      await rename(`${file}.orig`, file);
    }
    const back = await hup();
    expect(back.fastcgi.map((a) => a.app)).not.toContain('acme.evil');
  });

  it('apply to a node whose agent does not take the new agent.json (hung): rolled back at the agent step, the old release and its agent.json back', async () => {
    const s0 = await status();
    const before = (await readFile(join(root, 'current', 'manifest.json'), 'utf8'));
    const pid = await agentPid();
    const master = nginxPid(nodes, 'f1');
    await writeFleet({ php: 'v2', topics: ['t1', 't2', 't3'] }); // agent.json alone changes
    process.kill(pid, 'SIGSTOP');
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['apply', '--fleet', fleet, '--local', nodes, '--local-port-base', String(BASE), '--local-port-range', '1', '--local-address', ADDR, '--yes', '--json'], { timeout: 120_000 });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(r.code).toBe(1);
    const res = JSON.parse(r.stdout).nodes[0];
    expect(res).toMatchObject({ outcome: 'rolled-back', step: 'agent', reloads: 0 });
    expect(res.cause).toMatch(/did not come up with the new agent.json/);
    expect(await readFile(join(root, 'current', 'manifest.json'), 'utf8')).toBe(before);
    // Woken, the agent handles the signals it was sent and runs the old release's agent.json again.
    await until('the agent on the old agent.json', async () => ((await healthz()).config === s0.config ? true : undefined));
    expect(await currentConfigDigest()).toBe(s0.config);
    expect(nginxPid(nodes, 'f1')).toBe(master);
    await writeFleet({ php: 'v2', topics: ['t1', 't2'] });
  });

  it('an agent killed outright: its keeper stops php-cgi; with the keeper killed too, the next agent stops the leftovers', async () => {
    // The agent alone (a crash): the keepers see their channel close and stop their processes.
    let s = await status();
    let old = [...appOf(s, 'acme.php').pids, ...appOf(s, 'acme.php2').pids];
    agent!.kill('SIGKILL');
    await agent;
    await until('the keepers to stop php-cgi', async () => old.every((p) => !alive(p)), 10_000);
    log = '';
    startAgent();
    s = await until('the next agent', async () => {
      const st = await status();
      return appOf(st, 'acme.php').pids.length === 2 ? st : undefined;
    });

    // Agent and keepers killed at once (the OOM killer, say): php-cgi lives on, orphaned.
    old = appOf(s, 'acme.php').pids;
    const keepers = s.fastcgi.map((a) => a.keeper!).filter(Boolean);
    // Stopped first, so no keeper can see the agent's channel close and stop php-cgi between the
    // kills (a loaded CI machine once ran a keeper's disconnect handler there).
    agent!.kill('SIGSTOP');
    for (const k of keepers) process.kill(k, 'SIGSTOP');
    for (const k of keepers) process.kill(k, 'SIGKILL');
    agent!.kill('SIGKILL');
    await agent;
    await sleep(300);
    expect(old.every(alive)).toBe(true);
    log = '';
    startAgent();
    const next = await until('the agent after that', async () => {
      const st = await status();
      return appOf(st, 'acme.php').pids.length === 2 ? st : undefined;
    });
    expect(log).toMatch(/"msg":"fastcgi: stopped processes left by an earlier agent","app":"acme.php","processes":2/);
    expect(old.some(alive)).toBe(false);
    expect(appOf(next, 'acme.php').pids.some((p) => old.includes(p))).toBe(false);
    expect((await php()).body).toMatch(/^v2 /);
  });

  it('SIGTERM stops every process and removes run/agent.pid', async () => {
    const s = await status();
    const all = s.fastcgi.flatMap((a) => [...a.pids, ...(a.keeper ? [a.keeper] : [])]);
    agent!.kill('SIGTERM');
    const r = await agent!;
    expect(r.exitCode, log).toBe(0);
    expect(all.filter(alive)).toEqual([]);
    await expect(stat(join(root, 'run', 'agent.pid'))).rejects.toThrow();
    expect((await php()).status).toBe(502);
  });

  it('edgectl agent --root (the CLI) does the same from the release\'s agent.json', async () => {
    log = '';
    agent = execa(process.execPath, [BIN, 'agent', '--root', root], { reject: false, env: { NO_COLOR: '1' } });
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const h = await until('the CLI agent', async () => {
      const x = await healthz();
      return x.ok && x.fastcgi?.running === 3 ? x : undefined;
    });
    expect(h.config).toBe(await currentConfigDigest());
    expect(await agentPid()).toBe(agent.pid);
    expect((await php()).body).toMatch(/^v2 /);
    expect((await hup()).reload).toMatchObject({ outcome: 'unchanged' });
    agent.kill('SIGTERM');
    expect((await agent).exitCode, log).toBe(0);
  });
});
