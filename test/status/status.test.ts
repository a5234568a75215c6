import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { cli, json } from '../helpers/cli.js';
import { BIN } from '../helpers/paths.js';
import { alive, signal } from '../helpers/lab-util.js';
import { closeNginxLab, writeApps } from '../apply/helpers.js';
import { sha } from '../agent/helpers.js';

/**
 * `edgectl status` over real sshd: a relay, two edges reachable only through it, a core reached
 * directly and an edge behind a reverse tunnel; releases applied with `edgectl apply`, and a real
 * agent on edge-1. Every value a row shows is compared with the real thing on the node.
 */
const HTTP_PORT = 23540;
const CORE_HTTP = { address: '127.0.2.31', port: 23541 };
const AGENT_LISTEN = '127.0.0.1:23620';
let lab: Lab;
let dir: string;
let fleet: string;
let home: string;
let relay: LabHost;
let e1: LabHost;
let e2: LabHost;
let core: LabHost;
let nat: LabHost;
let agent: ChildProcess;
let applied: Record<string, string>;
const flags = () => ['--fleet', fleet, '--identity', lab.clientKey];
const run = (args: string[], env?: Record<string, string>) => cli(args, { home, env });
const git = (...args: string[]) => execa('git', ['-C', fleet, ...args], { env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } });
const pidOf = (h: LabHost) => Number(readFileSync(join(h.root, 'run', 'nginx.pid'), 'utf8').trim());
/** The master's children, counted from /proc here (not by the node's script). */
const childrenOf = (pid: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try {
    return readFileSync(`/proc/${d}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1] === String(pid);
  } catch {
    return false;
  }
}).length;
const row = (r: { stdout: string; stderr: string; code: number }, node: string) => json(r).nodes.find((n: { node: string }) => n.node === node);

beforeAll(async () => {
  lab = await createLab();
  relay = await lab.addHost('relay-1', { relay: true });
  e1 = await lab.addHost('edge-1', { behind: relay });
  e2 = await lab.addHost('edge-2', { behind: relay });
  nat = await lab.addHost('edge-9', { behind: relay, reverseTunnel: true });
  core = await lab.addHost('core-1');
  dir = await mkdtemp(join(tmpdir(), 'ec-status-'));
  fleet = join(dir, 'fleet');
  home = join(dir, 'home');
  await lab.writeFleet(fleet, { pin: true });
  const docs = [relay, e2, nat].map((h) => lab.nodeDoc(h, { pin: true, spec: { http: { port: HTTP_PORT } } }));
  docs.push(lab.nodeDoc(e1, { pin: true, spec: { http: { port: HTTP_PORT }, agent: { listen: AGENT_LISTEN } } }));
  docs.push(lab.nodeDoc(core, { pin: true, spec: { http: CORE_HTTP } }));
  await writeFile(join(fleet, 'nodes.yaml'), docs.join('---\n'));
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeApps(fleet, [{ name: 'web', domain: 'www.acme.test', nodes: ['edge-1', 'edge-2', 'edge-9'], html: 'web v1\n' }]);
  await git('init', '-q');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'fleet');
  const a = await run(['apply', ...flags(), '--yes', '--json']);
  expect(a.code, a.stdout + a.stderr).toBe(0);
  applied = Object.fromEntries(json(a).nodes.map((n: { node: string; to: string }) => [n.node, n.to]));
  // The agent where render puts its state (<root>/spool): status reads its admin token there, on the node.
  agent = lab.spawnIn(e1, [process.execPath, BIN, 'agent', '--node', 'edge-1', '--role', 'edge', '--listen', AGENT_LISTEN, '--admin', '127.0.0.1:23621',
    '--data', join(e1.root, 'spool'), '--upstream', 'http://127.0.0.1:9/v1/forward', '--token', `acme:${sha('tok')}`, '--topic', 'acme/events', '--heartbeat-seconds', '0'], join(dir, 'agent.log'));
  for (let i = 0; i < 100; i++) {
    const r = await lab.execIn(e1, ['curl', '-s', '-m', '1', `http://${AGENT_LISTEN}/healthz`]);
    if (r.stdout.includes('"ok":true')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const body of ['{"n":1}', '{"n":22}']) {
    const p = await lab.execIn(e1, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', '-H', 'Authorization: Bearer tok', '--data-binary', body, `http://${AGENT_LISTEN}/v1/q/events`]);
    expect(p.stdout).toBe('202');
  }
}, 180_000);

afterAll(async () => {
  agent?.kill('SIGKILL');
  await closeNginxLab(lab, dir);
});

describe('edgectl status over SSH', { timeout: 180_000 }, () => {
  it('every node healthy: rows hold the real pids, releases, commits and the agent\'s spool; exit 0', async () => {
    const r = await run(['status', ...flags(), '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = json(r);
    expect(Object.keys(rep)).toEqual(['format', 'source', 'at', 'fleet', 'nodes', 'summary']);
    expect(rep).toMatchObject({ format: 'edgectl-status/v1', source: 'live', fleet: { name: 'lab', dirty: false } });
    expect(rep.summary).toEqual({ nodes: 5, healthy: 5, degraded: 0, unreachable: 0, error: 0 });
    const head = (await git('rev-parse', 'HEAD')).stdout.trim();
    for (const h of [relay, e1, e2, nat, core]) {
      const n = rep.nodes.find((x: { node: string }) => x.node === h.name);
      const pid = pidOf(h);
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('nginx');
      expect(n.nginx).toMatchObject({ up: true, pid, workers: childrenOf(pid) });
      expect(n.nginx.workers).toBeGreaterThan(0);
      // The config nginx serves is current's, as its manifest names it.
      const manifest = JSON.parse(readFileSync(join(h.root, 'current', 'manifest.json'), 'utf8'));
      expect(n.nginx).toMatchObject({ configId: manifest.nginxConfigId, currentConfigId: manifest.nginxConfigId });
      expect(n.release).toEqual({ current: applied[h.name], good: applied[h.name], commit: head, goodCommit: head, behind: 0 });
      expect((await readlink(join(h.root, 'current'))).replace('releases/', '')).toBe(applied[h.name]);
      expect(n.disk.totalBytes).toBeGreaterThan(n.disk.freeBytes);
      expect(n.load).toHaveLength(3);
    }
    expect(rep.nodes.map((n: { node: string; path: string }) => [n.node, n.path])).toEqual([
      ['core-1', 'direct'], ['edge-1', 'via relay-1'], ['edge-2', 'via relay-1'], ['edge-9', 'tunnel via relay-1'], ['relay-1', 'direct'],
    ]);
    const e = row(r, 'edge-1');
    expect(e.agent).toMatchObject({ state: 'up', store: 'open' });
    expect(e.agent.uptimeSeconds).toBeGreaterThanOrEqual(0);
    // The agent's own answer, asked here with its token: the row carries its numbers.
    const token = readFileSync(join(e1.root, 'spool', 'admin-token'), 'utf8').trim();
    const own = JSON.parse((await lab.execIn(e1, ['curl', '-s', '-m', '5', '-H', `Authorization: Bearer ${token}`, 'http://127.0.0.1:23621/status'])).stdout);
    expect(own.totals.depth).toBe(2);
    expect(e.spool).toMatchObject({ depth: 2, bytes: own.totals.bytes, dropped: 0, quarantined: 0 });
    expect(e.spool.bytes).toBeGreaterThan(0);
    expect(e.spool.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    // No agent ever ran on the others: "none", not "down".
    expect(row(r, 'edge-2').agent.state).toBe('none');
  });

  it('the admin token never leaves the node: not in what status prints', async () => {
    const token = readFileSync(join(e1.root, 'spool', 'admin-token'), 'utf8').trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const r = await run(['status', 'edge-1', ...flags(), '--json']);
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(json(r).nodes.map((n: { node: string }) => n.node)).toEqual(['edge-1']);
  });

  it('the table: one row per node and a summary line; no escape codes off a terminal or with NO_COLOR', async () => {
    const plain = await run(['status', ...flags()]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/edge-1\s+via relay-1\s+healthy\s+[0-9a-f]{12} \([0-9a-f]{7}\)\s+\d+ \(\d+ w\)\s+up \d+s\s+2 \/ \d+ B \/ \d+s/);
    expect(plain.stdout).toMatch(/5 node\(s\): 5 healthy, 0 degraded, 0 unreachable\n?$/);
    const noColor = await run(['status', ...flags()], { NO_COLOR: '1', FORCE_COLOR: '1' });
    const forced = await run(['status', ...flags()], { FORCE_COLOR: '1' });
    // The check can see colour: forced colour has it, plain and NO_COLOR runs have none.
    expect(forced.stdout).toContain('\x1b[');
    for (const x of [plain, noColor]) expect(x.stdout + x.stderr).not.toContain('\x1b');
  });

  it('a new commit in the fleet: rows say how far git is ahead', async () => {
    await writeFile(join(fleet, 'README.md'), 'lab\n');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'docs');
    const r = await run(['status', 'edge-2', ...flags(), '--json']);
    expect(row(r, 'edge-2').release.behind).toBe(1);
    expect((await run(['status', 'edge-2', ...flags()])).stdout).toMatch(/\+1 in git/);
  });

  it('nginx serving another config than current\'s (a reload it refused): degraded, exit 2', async () => {
    const file = join(relay.root, 'current', 'manifest.json');
    const text = readFileSync(file, 'utf8');
    const m = JSON.parse(text);
    await writeFile(file, JSON.stringify({ ...m, nginxConfigId: 'f'.repeat(m.nginxConfigId.length) }));
    try {
      const r = await run(['status', 'relay-1', ...flags(), '--json']);
      expect(r.code, r.stderr).toBe(2);
      expect(row(r, 'relay-1')).toMatchObject({ health: 'degraded', problems: ["nginx serves another config than current's"], nginx: { configId: m.nginxConfigId } });
    } finally {
      await writeFile(file, text);
    }
  });

  it('nginx stopped on one node: that row is degraded, exit 2', async () => {
    const pid = pidOf(e2);
    signal(pid, 'SIGTERM');
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    const r = await run(['status', ...flags(), '--json']);
    expect(r.code, r.stderr).toBe(2);
    const n = row(r, 'edge-2');
    expect(n).toMatchObject({ health: 'degraded', problems: ['nginx down'], nginx: { up: false, pid: null } });
    expect(json(r).summary).toMatchObject({ healthy: 4, degraded: 1 });
  });

  it('the agent stopped: its node is degraded ("agent down"), exit 2', async () => {
    agent.kill('SIGKILL');
    await new Promise((r) => (agent.exitCode !== null || agent.signalCode !== null ? r(null) : agent.once('exit', r)));
    const r = await run(['status', 'edge-1', ...flags(), '--json']);
    expect(r.code).toBe(2);
    expect(row(r, 'edge-1')).toMatchObject({ health: 'degraded', agent: { state: 'down' }, problems: ['agent down (no answer on its admin port)'] });
  });

  it('a reverse tunnel down: that node is unreachable, and the row says it is the tunnel', async () => {
    const tunnel = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`127.0.0.1:${nat.tunnelPort}:127.0.0.1:22`);
      } catch {
        return false;
      }
    });
    expect(tunnel.length).toBeGreaterThan(0);
    for (const pid of tunnel) signal(pid, 'SIGKILL');
    for (let i = 0; i < 50; i++) {
      if ((await lab.execIn(relay, ['ss', '-Hltn', `sport = :${nat.tunnelPort}`])).stdout.trim() === '') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run(['status', 'edge-9', 'edge-2', ...flags(), '--json']);
    expect(r.code).toBe(1);
    const n = row(r, 'edge-9');
    expect(n).toMatchObject({ health: 'unreachable', reachable: false, path: 'tunnel via relay-1' });
    expect(n.error).toMatch(/reverse tunnel at 127\.0\.0\.1:\d+ on relay-1/);
    expect(n.error).toMatch(/tunnel down/);
    expect(n.hint).toMatch(/edge-9's agent holds its tunnel/);
    expect((await run(['status', 'edge-9', ...flags()])).stdout).toMatch(/edge-9: hint: edge-9's agent holds its tunnel/);
    expect(row(r, 'edge-2').reachable).toBe(true);
  });

  it('a node down: its row says unreachable and why, the others still answer, exit 1, no stack trace', async () => {
    await lab.stop(core);
    try {
      const r = await run(['status', ...flags(), '--json']);
      expect(r.code).toBe(1);
      const n = row(r, 'core-1');
      expect(n).toMatchObject({ health: 'unreachable', reachable: false });
      expect(n.error).toMatch(/core-1/);
      expect(row(r, 'edge-2').reachable).toBe(true);
      const t = await run(['status', ...flags()]);
      expect(t.code).toBe(1);
      expect(t.stdout).toMatch(/core-1\s+direct\s+unreachable: /);
      expect(t.stdout).toMatch(/5 node\(s\): 1 healthy, 2 degraded, 2 unreachable/);
      expect(t.stdout + t.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await lab.start(core);
    }
  });
});
