import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { BIN, REPO } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { type AgentProc, killAll, post, sha, startAgent } from './helpers.js';

let dir: string;
let edge: AgentProc;
/** The agent's listen port (its admin API on the next one); the ports where no agent and no hub listen. */
let LISTEN: number;
let ADMIN: string;
let HUB: string;
let DOWN: number;
let UNREACHABLE: number;
/** --admin with the token file the agent made in its data dir. */
let A: string[];
/** Local mode's ports for the fleet's two nodes: edge-s's agent is started on its own. */
let LP: LocalPortBlock;
const LOCAL = () => ['--local', path.join(dir, 'nodes'), ...LP.flags];

const spool = (...args: string[]) => cli(['spool', ...args]);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-spoolcli-'));
  LP = await localPortBlock(['edge-s', 'edge-down']);
  LISTEN = LP.of('edge-s').agent;
  ADMIN = `http://127.0.0.1:${LISTEN + 1}`;
  let hub: number;
  [hub, DOWN, UNREACHABLE] = await freePorts(3);
  HUB = `http://127.0.0.1:${hub}/v1/forward`;
  // A fleet whose node edge-s has this test's agent (admin port = listen port + 1), and one whose agent is not running.
  await mkdir(path.join(dir, 'fleet'));
  await writeFile(path.join(dir, 'fleet', 'fleet.yaml'), ['apiVersion: edgectl/v1', 'kind: Fleet', 'metadata: { name: spool-test }',
    'spec:', `  defaults: { agent: { listen: "127.0.0.1:${LISTEN}" } }`, `  hub: { url: "${HUB}" }`, ''].join('\n'));
  await writeFile(path.join(dir, 'fleet', 'nodes.yaml'), ['edge-s', 'edge-down'].map((n) => ['apiVersion: edgectl/v1', 'kind: Node', `metadata: { name: ${n} }`,
    'spec:', '  role: edge', `  address: 127.0.0.${n === 'edge-down' ? 2 : 1}`, ...(n === 'edge-down' ? [`  agent: { listen: "127.0.0.1:${DOWN}" }`] : []), ''].join('\n')).join('---\n'));
  // Its data dir is where the embedded (--local) mode finds the node's root: <local>/<node>/spool.
  edge = await startAgent('edge-s', LISTEN, LISTEN + 1, ['--role', 'edge', '--data', path.join(dir, 'nodes', 'edge-s', 'spool'), '--upstream', HUB,
    '--token', `acme:${sha('tok')}`, '--topic', 'acme/a', '--topic', 'acme/b', '--heartbeat-seconds', '0']);
  for (const [t, b] of [['a', 'one'], ['a', 'two'], ['b', Buffer.from([0xff, 0x00, 0x10])]] as const) {
    expect((await post(edge.port, t, b, { authorization: 'Bearer tok' })).status).toBe(202);
  }
  A = ['--admin', ADMIN, '--admin-token-file', edge.tokenFile];
}, 300_000);

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('edgectl spool (through the admin API)', { timeout: 120_000 }, () => {
  it('status shows depth per tenant and topic, as a table and as JSON', async () => {
    const j = await spool('status', ...A, '--json');
    expect(j.code).toBe(0);
    const s = JSON.parse(j.stdout);
    expect(s.queues.map((q: { topic: string; depth: number }) => [q.topic, q.depth])).toEqual([['a', 2], ['b', 1]]);
    const t = await spool('status', ...A);
    expect(t.stdout).toMatch(/edge-s \(edge\) store open/);
    expect(t.stdout).toMatch(/acme\s+a\s+2/);
  });

  it('peek shows the oldest messages without removing them (binary bodies as base64)', async () => {
    const a = JSON.parse((await spool('peek', ...A, '--tenant', 'acme', '--topic', 'a', '--json')).stdout);
    expect(a.messages.map((m: { body: string }) => m.body)).toEqual(['one', 'two']);
    const b = JSON.parse((await spool('peek', ...A, '--tenant', 'acme', '--topic', 'b', '--json')).stdout);
    expect(b.messages[0]).toMatchObject({ encoding: 'base64', body: Buffer.from([0xff, 0x00, 0x10]).toString('base64') });
    const missing = await spool('peek', ...A, '--tenant', 'acme');
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringMatching(/peek needs --tenant and --topic/)]);
  });

  it('purge refuses without --yes off a terminal, then removes and says what it removed', async () => {
    const no = await spool('purge', ...A, '--tenant', 'acme', '--topic', 'a');
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/EDGECTL_NOT_CONFIRMED/);
    expect(JSON.parse((await spool('status', ...A, '--json')).stdout).queues[0].depth).toBe(2);
    const yes = await spool('purge', ...A, '--tenant', 'acme', '--topic', 'a', '--yes', '--json');
    expect(yes.code).toBe(0);
    expect(JSON.parse(yes.stdout).removed).toEqual([{ tenant: 'acme', topic: 'a', count: 2, bytes: expect.any(Number) }]);
    const after = JSON.parse((await spool('status', ...A, '--json')).stdout).queues;
    expect(after.map((q: { topic: string; depth: number; purged: number }) => [q.topic, q.depth, q.purged])).toEqual([['a', 0, 2], ['b', 1, 0]]);
  });

  it('--node reaches the agent through the node\'s transport (local mode) and sees what --admin sees', async () => {
    const node = ['--node', 'edge-s', '--fleet', path.join(dir, 'fleet'), ...LOCAL()];
    const viaAdmin = JSON.parse((await spool('status', ...A, '--json')).stdout);
    const r = await spool('status', ...node, '--json');
    expect([r.code, r.stderr]).toEqual([0, '']);
    const viaNode = JSON.parse(r.stdout);
    expect(viaNode.node).toBe('edge-s');
    expect(viaNode.queues.map((q: { topic: string; depth: number }) => [q.topic, q.depth])).toEqual(viaAdmin.queues.map((q: { topic: string; depth: number }) => [q.topic, q.depth]));
    const b = JSON.parse((await spool('peek', ...node, '--tenant', 'acme', '--topic', 'b', '--json')).stdout);
    expect(b.messages[0]).toMatchObject({ encoding: 'base64', body: Buffer.from([0xff, 0x00, 0x10]).toString('base64') });
    const unknown = await spool('status', '--node', 'nope', '--fleet', path.join(dir, 'fleet'), ...LOCAL());
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/no node named "nope"/)]);
    const down = await spool('status', '--node', 'edge-down', '--fleet', path.join(dir, 'fleet'), ...LOCAL());
    // An agent that never ran there has not made its admin token either: that is what is said.
    expect([down.code, down.stderr]).toEqual([1, expect.stringMatching(/edge-down: no admin token at .*nodes\/edge-down\/spool\/admin-token/)]);
  });

  it('--node finds an agent that listens on another loopback address where render put its admin API (listen host, port + 1)', async () => {
    const fleet = path.join(dir, 'fleet-lo3');
    const lp3 = await localPortBlock(['edge-lo3'], '127.0.0.3');
    const lo3 = lp3.of('edge-lo3').agent;
    await mkdir(fleet);
    await writeFile(path.join(fleet, 'fleet.yaml'), ['apiVersion: edgectl/v1', 'kind: Fleet', 'metadata: { name: lo3 }', 'spec:', `  hub: { url: "${HUB}" }`, '---',
      'apiVersion: edgectl/v1', 'kind: Node', 'metadata: { name: edge-lo3 }', 'spec:', '  role: edge', '  address: 127.0.0.3', `  agent: { listen: "127.0.0.3:${lo3}" }`, ''].join('\n'));
    const proc = spawn(process.execPath, [BIN, 'agent', '--node', 'edge-lo3', '--role', 'edge', '--listen', `127.0.0.3:${lo3}`, '--admin', `127.0.0.3:${lo3 + 1}`,
      '--data', path.join(dir, 'nodes-lo3', 'edge-lo3', 'spool'), '--upstream', HUB, '--heartbeat-seconds', '0'], { cwd: REPO, stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.3:${lo3}/healthz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await spool('status', '--node', 'edge-lo3', '--fleet', fleet, '--local', path.join(dir, 'nodes-lo3'), ...lp3.flags, '--local-address', '127.0.0.3', '--json');
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(JSON.parse(r.stdout).node).toBe('edge-lo3');
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it('without the agent\'s admin token the agent refuses: a clear error, exit 1, nothing purged', async () => {
    const wrong = path.join(dir, 'wrong-token');
    await writeFile(wrong, `${'a'.repeat(64)}\n`);
    for (const extra of [[], ['--admin-token-file', wrong]]) {
      const r = await spool('purge', '--admin', ADMIN, ...extra, '--tenant', 'acme', '--yes');
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/refused the request: no admin token, or not this agent's/)]);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const garbage = await spool('status', '--admin', ADMIN, '--admin-token-file', '/dev/zero');
    expect([garbage.code, garbage.stderr]).toEqual([1, expect.stringMatching(/not a token file/)]);
    expect(JSON.parse((await spool('status', ...A, '--json')).stdout).queues.find((q: { topic: string }) => q.topic === 'b').depth).toBe(1);
  });

  it('an unreachable agent is a clear error, exit 1', async () => {
    const r = await spool('status', '--admin', `http://127.0.0.1:${UNREACHABLE}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the agent admin API.*EDGECTL_AGENT_UNREACHABLE/);
  });
});
