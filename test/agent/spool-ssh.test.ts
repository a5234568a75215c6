import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { cli, json } from '../helpers/cli.js';
import { BIN } from '../helpers/paths.js';
import { sha } from './helpers.js';

/**
 * `edgectl spool --node` over real sshd: an edge in its own network namespace, reachable only
 * through a relay. Its agent listens on every address of the edge (agent.listen 0.0.0.0), yet
 * its admin API stays on the edge's loopback (render's address: 127.0.0.1, listen port + 1), so
 * the only way to it is the SSH connection through the relay, as on a real node, with the admin
 * token the CLI reads there (as the SSH user, which is the agent's user here: root).
 */
const LISTEN = '0.0.0.0:23610';
const ADMIN = '127.0.0.1:23611';
let lab: Lab;
let dir: string;
let fleet: string;
let home: string;
let relay: LabHost;
let edge: LabHost;
let agent: ChildProcess;
const flags = () => ['--node', 'edge-1', '--fleet', fleet, '--identity', lab.clientKey];
const run = (args: string[]) => cli(args, { home });

/** A device posting to the agent from inside the edge's namespace. */
async function post(topic: string, body: string): Promise<number> {
  const r = await lab.execIn(edge, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', '-H', 'Authorization: Bearer tok', '--data-binary', body, `http://127.0.0.1:23610/v1/q/${topic}`]);
  return Number(r.stdout);
}

beforeAll(async () => {
  lab = await createLab();
  relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  dir = await mkdtemp(join(tmpdir(), 'ec-spool-ssh-'));
  fleet = join(dir, 'fleet');
  home = join(dir, 'home');
  await lab.writeFleet(fleet, { pin: true });
  await writeFile(join(fleet, 'nodes.yaml'), [lab.nodeDoc(relay, { pin: true }), lab.nodeDoc(edge, { pin: true, spec: { agent: { listen: LISTEN } } })].join('---\n'));
  // Its state where render puts it (<root>/spool): the CLI reads the admin token there.
  agent = lab.spawnIn(edge, [process.execPath, BIN, 'agent', '--node', 'edge-1', '--role', 'edge', '--listen', LISTEN, '--admin', ADMIN,
    '--data', join(edge.root, 'spool'), '--upstream', 'http://127.0.0.1:9/v1/forward', '--token', `acme:${sha('tok')}`, '--topic', 'acme/events', '--heartbeat-seconds', '0'], join(dir, 'agent.log'));
  for (let i = 0; i < 100; i++) {
    const r = await lab.execIn(edge, ['curl', '-s', '-m', '1', 'http://127.0.0.1:23610/healthz']);
    if (r.stdout.includes('"ok":true')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  agent?.kill('SIGKILL');
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl spool --node over SSH through a relay', { timeout: 120_000 }, () => {
  it('the device API listens on the edge\'s address, the admin API only on its loopback, and it wants its token', async () => {
    const from = await lab.execIn(relay, ['curl', '-s', '-m', '2', `http://${edge.address}:23610/healthz`]);
    expect([from.code, from.stdout]).toEqual([0, expect.stringContaining('"ok":true')]);
    // The edge answers on its address (above), so curl's "could not connect" (exit 7: refused from the
    // relay, no route from here) means nothing listens there; a timeout (28) or any other failure is not that.
    for (const where of [relay, undefined]) {
      const r = await lab.execIn(where, ['curl', '-sS', '-m', '2', `http://${edge.address}:23611/healthz`]);
      expect(r.code, r.stderr).toBe(7);
    }
    const noToken = await lab.execIn(edge, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '2', '-X', 'POST', `http://${ADMIN}/v1/spool/purge`]);
    expect(noToken.stdout).toBe('401');
    // Status and metrics (they name every tenant) are not on the device API.
    const status = await lab.execIn(edge, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '2', 'http://127.0.0.1:23610/status']);
    expect(status.stdout).toBe('404');
    const st = await stat(join(edge.root, 'spool', 'admin-token'));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('status, peek and purge see and change what devices posted on the node', async () => {
    expect(await post('events', '{"n":1}')).toBe(202);
    expect(await post('events', '{"n":2}')).toBe(202);
    const st = await run(['spool', 'status', ...flags(), '--json']);
    expect([st.code, st.stderr]).toEqual([0, '']);
    const s = json(st);
    expect(s.node).toBe('edge-1');
    expect(s.queues.map((q: { tenant: string; topic: string; depth: number }) => [q.tenant, q.topic, q.depth])).toEqual([['acme', 'events', 2]]);
    const table = await run(['spool', 'status', ...flags()]);
    expect(table.stdout).toMatch(/acme\s+events\s+2/);

    const peek = json(await run(['spool', 'peek', ...flags(), '--tenant', 'acme', '--topic', 'events', '--json']));
    expect(peek.messages.map((m: { body: string }) => m.body)).toEqual(['{"n":1}', '{"n":2}']);

    const purge = await run(['spool', 'purge', ...flags(), '--tenant', 'acme', '--topic', 'events', '--yes', '--json']);
    expect(purge.code, purge.stderr).toBe(0);
    expect(json(purge).removed).toEqual([{ tenant: 'acme', topic: 'events', count: 2, bytes: expect.any(Number) }]);
    expect(json(await run(['spool', 'status', ...flags(), '--json'])).queues[0]).toMatchObject({ depth: 0, purged: 2 });
  });

  it('a node whose agent is down is a clear error naming the node, exit 1', async () => {
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
    const r = await run(['spool', 'status', ...flags()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/edge-1/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
