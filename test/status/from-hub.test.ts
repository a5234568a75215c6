import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { writeTestFleet } from '../apply/helpers.js';
import { migrate } from '../../src/lib/agent/sinks/pg/migrate.js';
import type { Heartbeat } from '../../src/lib/agent/telemetry.js';

/**
 * `status --from-hub` against a real PostgreSQL (its own database, dropped after): rows from the
 * heartbeats stored there, without connecting to any node (the fleet's addresses are 192.0.2.x,
 * which nothing here can reach).
 */
const DB = `ec_status_hub_${process.pid}`;
const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const URL_ = `postgres://postgres@127.0.0.1:5432/${DB}`;
const NODES = ['edge-a', 'edge-b', 'edge-c', 'edge-d', 'edge-e', 'edge-f'];
const R1 = 'a'.repeat(20);
let dir: string;
let fleet: string;
let sql: postgres.Sql;
const run = (args: string[], env?: Record<string, string>) => cli([...args, '--fleet', fleet], { env });
const row = (r: { stdout: string; stderr: string; code: number }, node: string) => json(r).nodes.find((n: { node: string }) => n.node === node);
const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();

function beat(node: string, o: Partial<Heartbeat> = {}): Heartbeat {
  return {
    node, role: 'edge', time: ago(10), store: 'open', depth: 3, bytes: 300, quarantined: 0, lastForward: ago(20),
    agent: { version: '0.1.0', uptimeSeconds: 3600 },
    release: { current: R1, good: R1 },
    nginx: { up: true, masterPid: 4242, workers: 2, configId: null },
    spool: { oldestAgeSeconds: 12, dropped: 1, expired: 0 },
    fastcgi: [{ app: 'acme-php', state: 'running', processes: 2, restarts: 0 }],
    tunnel: { state: 'up', upSince: ago(600), reconnects: 1, lastError: null },
    disk: { freeBytes: 10 * 2 ** 30, totalBytes: 40 * 2 ** 30 },
    load: [0.5, 0.25, 0.1],
    ...o,
  };
}

async function store(node: string, time: string, body: unknown): Promise<void> {
  await sql`insert into edgectl_heartbeats_latest (node, time, body, received_at) values (${node}, ${time}, ${sql.json(body as postgres.JSONValue)}, now())`;
}

beforeAll(async () => {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${DB}`);
  await admin.unsafe(`create database ${DB}`);
  await admin.end();
  sql = postgres(URL_, { max: 1, onnotice: () => {} });
  // The hub's own schema: the PostgreSQL sink's migrations, exactly what a hub creates at start.
  await migrate(sql);
  dir = await mkdtemp(join(tmpdir(), 'ec-status-hub-'));
  fleet = join(dir, 'fleet');
  await writeTestFleet(fleet, { nodes: NODES, apps: [] });
  const a = beat('edge-a');
  await store('edge-a', a.time, a);
  const b = beat('edge-b', { time: ago(3 * 3600) });
  await store('edge-b', b.time, b);
  // edge-c never sent one.
  const d = beat('edge-d', { nginx: { up: false, masterPid: null, workers: 0 } });
  await store('edge-d', d.time, d);
  // A hostile neighbour's body: every field of the wrong type or size.
  await store('edge-e', ago(5), { node: 'edge-e', time: ago(5), store: 'open\nINJECT', depth: -4, bytes: 'many', quarantined: 0, lastForward: 'yesterday',
    agent: { version: 'v'.repeat(10_000), uptimeSeconds: 1e300 }, release: { current: '../../etc', good: R1 },
    nginx: { up: true, masterPid: '$(reboot)', workers: -1 }, fastcgi: [{ app: 'a\nb', state: 'running' }, 'x', { app: 'ok-app', state: 'RUNNING; rm' }],
    tunnel: 'up', disk: { freeBytes: 'lots' }, load: [1, 2, 'x'] });
  // Larger than a status reader takes in (stored as incompressible hex).
  await store('edge-f', ago(5), { ...beat('edge-f'), pad: randomBytes(150_000).toString('hex') });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${DB} with (force)`);
  await admin.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl status --from-hub', { timeout: 60_000 }, () => {
  it('every node of the fleet is a row: the stored heartbeat\'s values, "last seen", and nodes with none', async () => {
    const r = await run(['status', '--from-hub', '--hub-db', URL_, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const rep = json(r);
    expect(rep.source).toBe('hub');
    expect(rep.nodes.map((n: { node: string }) => n.node)).toEqual(NODES);
    expect(row(r, 'edge-a')).toMatchObject({
      health: 'healthy', source: 'hub', reachable: true, path: 'direct',
      release: { current: R1, good: R1 },
      nginx: { up: true, pid: 4242, workers: 2 },
      agent: { state: 'up', version: '0.1.0', uptimeSeconds: 3600, store: 'open' },
      spool: { depth: 3, bytes: 300, oldestAgeSeconds: 12, dropped: 1, quarantined: 0 },
      fastcgi: [{ app: 'acme-php', state: 'running', processes: 2, restarts: 0 }],
      tunnel: { state: 'up', reconnects: 1 },
      disk: { freeBytes: 10 * 2 ** 30, totalBytes: 40 * 2 ** 30 },
      load: [0.5, 0.25, 0.1],
    });
    expect(row(r, 'edge-b')).toMatchObject({ health: 'unreachable', problems: ['last seen 3 h ago'], nginx: { pid: 4242 } });
    expect(row(r, 'edge-c')).toMatchObject({ health: 'unreachable', problems: ['no heartbeat at the hub'], lastSeen: null });
    expect(row(r, 'edge-d')).toMatchObject({ health: 'degraded', problems: ['nginx down'] });
    expect(rep.summary).toEqual({ nodes: 6, healthy: 1, degraded: 2, unreachable: 3, error: 0 });
  });

  it('a hostile heartbeat: each bad field is dropped, nothing of it passed on', async () => {
    const r = await run(['status', 'edge-e', '--from-hub', '--hub-db', URL_, '--json']);
    expect(r.stderr).toBe('');
    const e = row(r, 'edge-e');
    expect(e).toMatchObject({
      agent: { version: null, uptimeSeconds: null, store: null },
      release: { current: null, good: R1 },
      nginx: { up: true, pid: null, workers: null },
      spool: { depth: 0, bytes: 0 },
      lastForward: null, tunnel: null, disk: null, load: null,
      fastcgi: [{ app: 'ok-app', state: 'unknown' }],
    });
    expect(r.stdout).not.toMatch(/INJECT|reboot|\.\.\/|vvvvvvvvvv/);
    // Oversized: not read at all.
    const f = row(await run(['status', 'edge-f', '--from-hub', '--hub-db', URL_, '--json']), 'edge-f');
    expect(f).toMatchObject({ health: 'unreachable', problems: ['its stored heartbeat is not readable'] });
  });

  it('the table says "last seen 3 h ago"; exit 0 for healthy nodes only, 2 with a degraded one', async () => {
    const t = await run(['status', '--from-hub', '--hub-db', URL_]);
    expect(t.stdout).toMatch(/edge-b\s+direct\s+unreachable: last seen 3 h ago\s+3 h ago/);
    expect(t.stdout).toMatch(/edge-a\s+direct\s+healthy\s+\d+ s ago\s+aaaaaaaaaaaa\s+4242 \(2 w\)\s+0\.1\.0 up 1h\s+3 \/ 300 B \/ 12s\s+1 \/ 0\s+\d+ s ago\s+acme-php running\s+up\s+10 GiB \(25%\)\s+0\.50 0\.25 0\.10/);
    expect(t.stdout).toMatch(/6 node\(s\) \(from the hub's last heartbeats\): 1 healthy, 2 degraded, 3 unreachable/);
    expect((await run(['status', 'edge-a', '--from-hub', '--hub-db', URL_])).code).toBe(0);
    expect((await run(['status', 'edge-a', 'edge-d', '--from-hub'], { EDGECTL_HUB_DB: URL_ })).code).toBe(2);
  });

  it('--stale-after decides when a node counts as not heard from', async () => {
    const r = await run(['status', 'edge-b', '--from-hub', '--hub-db', URL_, '--stale-after', String(4 * 3600), '--json']);
    expect(r.code).toBe(0);
    expect(row(r, 'edge-b').health).toBe('healthy');
  });

  it('a database it cannot read: a coded error without the password, exit 1', async () => {
    const r = await run(['status', '--from-hub', '--hub-db', 'postgres://postgres:s3cret-pw@127.0.0.1:1/nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EDGECTL_HUB_DB/);
    expect(r.stderr + r.stdout).not.toContain('s3cret-pw');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const none = await run(['status', '--from-hub'], { EDGECTL_HUB_DB: '' });
    expect([none.code, none.stderr]).toEqual([1, expect.stringMatching(/--from-hub needs --hub-db/)]);
    const bad = await run(['status', '--from-hub', '--hub-db', 'mysql://x']);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/must be a postgres:\/\/ URL/)]);
  });
});
