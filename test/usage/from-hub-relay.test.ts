import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { REPO } from '../helpers/paths.js';
import { writeTestFleet } from '../apply/helpers.js';
import { type AgentProc, credential, kill9, killAll, post, sha, startAgent, waitFor } from '../agent/helpers.js';
import { createTestDb, type TestDb } from '../agent/pg-db.js';

/**
 * `edgectl status --from-hub` after real heartbeats flowed edge → relay → hub: three agent
 * processes, the relay taking only the edge (its accept list), the hub taking only the relay (and
 * the edge behind it), the hub's sink PostgreSQL (a database made here, dropped after). The rows
 * are what the agents said about themselves, as stored by the sink, read without connecting to
 * any node (the fleet's addresses are 192.0.2.x, which nothing here can reach).
 */
let dir: string;
let fleet: string;
let db: TestDb;
const procs: Record<'edge' | 'relay' | 'hub', AgentProc> = {} as never;
const NODES = { edge: 'edge-u', relay: 'relay-u', hub: 'hub-u' } as const;
const fromHub = (...args: string[]) => cli(['status', '--from-hub', '--hub-db', db.url(), '--fleet', fleet, '--json', ...args]);
const row = (r: { stdout: string; stderr: string; code: number }, node: string) => json(r).nodes.find((n: { node: string }) => n.node === node);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-usage-fromhub-'));
  fleet = join(dir, 'fleet');
  await writeTestFleet(fleet, { nodes: [NODES.edge, NODES.relay, NODES.hub], apps: [] });
  db = await createTestDb('edgectl_usage_fromhub');
  const [E, R, H] = [await freePortRange(2), await freePortRange(2), await freePortRange(2)];
  const edgeCred = credential(dir, NODES.edge);
  const relayCred = credential(dir, NODES.relay);
  const strangerCred = credential(dir, 'stranger');
  const common = ['--heartbeat-seconds', '1', '--topic', 'acme/t'];
  procs.hub = await startAgent(NODES.hub, H, H + 1, ['--role', 'hub', '--data', join(dir, 'hub'), '--sink', db.url(), '--accept-forward', relayCred.accept(NODES.edge), ...common]);
  procs.relay = await startAgent(NODES.relay, R, R + 1, ['--role', 'relay', '--data', join(dir, 'relay'), '--upstream', `http://127.0.0.1:${H}/v1/forward`,
    '--credential-file', relayCred.file, '--accept-forward', edgeCred.accept(), ...common]);
  procs.edge = await startAgent(NODES.edge, E, E + 1, ['--role', 'edge', '--data', join(dir, 'edge'), '--upstream', `http://127.0.0.1:${R}/v1/forward`,
    '--credential-file', edgeCred.file, '--token', `acme:${sha('tok')}`, ...common]);
  // Not on the relay's accept list: its heartbeats must never reach the hub.
  const S = await freePortRange(2);
  await startAgent('stranger', S, S + 1, ['--role', 'edge', '--data', join(dir, 'stranger'), '--upstream', `http://127.0.0.1:${R}/v1/forward`,
    '--credential-file', strangerCred.file, ...common]);
}, 180_000);

afterAll(async () => {
  await killAll();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('status --from-hub after heartbeats edge → relay → hub (PostgreSQL sink)', { timeout: 120_000 }, () => {
  it('the edge node\'s row: its own snapshot and when it was last seen; the relay and hub rows too; a stranger nowhere', async () => {
    for (let i = 0; i < 3; i++) expect((await post(procs.edge.port, 't', `m${i}`, { authorization: 'Bearer tok', 'content-type': 'text/plain' })).status).toBe(202);
    await waitFor(async () => (await db.sql`select count(*)::int as n from edgectl_heartbeats where node = ${NODES.edge}`)[0].n >= 3, 60_000, 'three edge heartbeats at the hub', 250);
    const t0 = Date.now();
    const r = await fromHub();
    expect(r.code, r.stderr).toBe(0);
    const version = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version;
    const e = row(r, NODES.edge);
    expect(e).toMatchObject({ source: 'hub', reachable: true, health: 'healthy', agent: { state: 'up', version, store: 'open' }, path: 'direct' });
    expect(Math.abs(Date.parse(e.lastSeen) - t0)).toBeLessThan(15_000);
    expect(e.agent.uptimeSeconds).toBeGreaterThanOrEqual(1);
    expect(e.spool).toMatchObject({ dropped: 0, quarantined: 0 });
    expect(e.lastForward).not.toBeNull(); // it forwarded the device messages (and its beats) through the relay
    expect(e.disk.totalBytes).toBeGreaterThan(e.disk.freeBytes);
    expect(e.load).toHaveLength(3);
    // The row is the edge's own snapshot as the sink stored it (not the relay's or the hub's).
    const [stored] = await db.sql`select body from edgectl_heartbeats_latest where node = ${NODES.edge}`;
    expect((stored.body as { node: string; role: string }).role).toBe('edge');
    expect(e.lastSeen).toBe(new Date((stored.body as { time: string }).time).toISOString());
    for (const n of [NODES.relay, NODES.hub]) expect(row(r, n)).toMatchObject({ reachable: true, agent: { state: 'up', version } });
    expect(json(r).summary).toMatchObject({ nodes: 3, unreachable: 0 });
    expect((await db.sql`select count(*)::int as n from edgectl_heartbeats where node = 'stranger'`)[0].n).toBe(0);
    // The device messages came the same way, from the edge.
    expect((await db.sql`select node from edgectl_messages where tenant = 'acme'`).map((x) => x.node)).toEqual([NODES.edge, NODES.edge, NODES.edge]);
  });

  it('last seen moves on while beats flow; the edge killed: its row goes to "last seen N s ago", exit 1', async () => {
    const first = row(await fromHub(), NODES.edge).lastSeen;
    await waitFor(async () => row(await fromHub(), NODES.edge).lastSeen > first, 30_000, 'a newer heartbeat', 500);
    await kill9(procs.edge);
    await new Promise((res) => setTimeout(res, 4000));
    const r = await fromHub('--stale-after', '3');
    expect(r.code).toBe(1);
    const e = row(r, NODES.edge);
    expect(e).toMatchObject({ health: 'unreachable', reachable: false });
    expect(e.problems[0]).toMatch(/^last seen \d+ s ago$/);
    expect(row(r, NODES.relay).health).toBe('healthy');
  });
});
