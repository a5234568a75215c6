import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeBatch } from '../../src/lib/agent/forward/wire.js';
import type { SpoolMessage } from '../../src/lib/agent/store/record.js';
import type { UsageMinute } from '../../src/lib/agent/telemetry.js';
import { freePort, freePortRange, freePorts } from '../helpers/ports.js';
import { REPO } from '../helpers/paths.js';
import { startWanProxy, type WanProxy } from '../helpers/wan-proxy.js';
import { credential, depth, killAll, post, sha, startAgent, status, waitFor } from './helpers.js';
import { createTestDb, PG_HOST, PG_PORT, type TestDb } from './pg-db.js';

// The PostgreSQL sink in a running chain: an edge's device messages and heartbeats, and a
// neighbour's usage minutes, into their tables; PostgreSQL unreachable at start and mid-run
// (nothing lost); the bundled agent (dist/agent/edgectl-agent.cjs) as the hub.

const PASSWORD = 'pw-s3cret-77'; // trust auth ignores it: it is here to be kept out of logs and /status
let dir: string;
const dbs: TestDb[] = [];
const newDb = async () => { const d = await createTestDb('edgectl_pgsink_chain'); dbs.push(d); return d; };
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-pgsink-'));
});
afterAll(async () => {
  await killAll();
  for (const d of dbs) await d.drop();
  await rm(dir, { recursive: true, force: true });
});

const NEIGHBOUR = 'e9';
const forwardAs = (port: number, msgs: SpoolMessage[]) => fetch(`http://127.0.0.1:${port}/v1/forward`, {
  method: 'POST', body: encodeBatch(msgs), headers: { 'content-type': 'application/vnd.edgectl.batch', authorization: 'Bearer hop' },
});
const usage = (over: Partial<UsageMinute> = {}): UsageMinute => ({
  v: 1, node: NEIGHBOUR, source: 'nginx', tenant: 'acme', app: 'acme-web', minute: '2026-12-02T06:41:00.000Z', requests: 12, bytesIn: 1200, bytesOut: 48000,
  status: { '1xx': 0, '2xx': 10, '3xx': 0, '4xx': 2, '5xx': 0 }, cache: { hit: 3, miss: 9 }, upstreamMs: { p50: 2, p90: 5, p99: 8, max: 8 }, ...over,
});
const hubArgs = (name: string, sink: string, extra: string[] = []) => ['--role', 'hub', '--data', path.join(dir, name), '--sink', sink,
  '--accept-forward', `${NEIGHBOUR}:${sha('hop')}`, '--topic', 'acme/t1', '--topic', 'acme/t2', ...extra];

describe('postgres sink in a chain', { timeout: 240_000 }, () => {
  it('an edge → hub chain stores device messages, both agents\' heartbeats, and a neighbour\'s usage minutes', async () => {
    const db = await newDb();
    const [E, EA, H, HA] = await freePorts(4);
    const edgeCred = credential(dir, 'edge-p');
    const topics = ['--topic', 'acme/t1', '--topic', 'acme/t2', '--heartbeat-seconds', '1'];
    const hub = await startAgent('hub-p', H, HA, [...hubArgs('hub-p', db.url({ password: PASSWORD })), '--accept-forward', edgeCred.accept(), '--heartbeat-seconds', '1']);
    const edge = await startAgent('edge-p', E, EA, ['--role', 'edge', '--data', path.join(dir, 'edge-p'), '--upstream', `http://127.0.0.1:${H}/v1/forward`,
      '--credential-file', edgeCred.file, '--token', `acme:${sha('tok')}`, ...topics]);
    const auth = { authorization: 'Bearer tok' };
    const binary = Buffer.from([0, 0xff, 0x5c, 0x27, 0x22, 10, 13]);
    const one = await post(E, 't1', 'hello', { ...auth, 'content-type': 'text/plain' });
    const bin = await post(E, 't2', binary, { ...auth, 'content-type': 'application/octet-stream' });
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ n: i }));
    const batch = await post(E, 't1', lines.join('\n') + '\n', { ...auth, 'content-type': 'application/x-ndjson' });
    expect([one.status, bin.status, batch.status]).toEqual([202, 202, 202]);
    const sent = new Map<string, [string, string, Buffer]>([
      [one.json.id, ['t1', 'text/plain', Buffer.from('hello')]], [bin.json.id, ['t2', 'application/octet-stream', binary]],
      ...(batch.json.ids as string[]).map((id, i) => [id, ['t1', 'application/json', Buffer.from(lines[i])]] as [string, [string, string, Buffer]]),
    ]);
    // A neighbour forwards its usage minute, one that does not parse, and one naming another node.
    const ts = Date.now();
    const agentMsg = (i: number, topic: string, body: string): SpoolMessage => ({ id: `${NEIGHBOUR}:n1:${i}`, tenant: '_agent', topic, contentType: 'application/json', ts, body: Buffer.from(body) });
    const neighbour = [agentMsg(1, 'usage', JSON.stringify(usage())), agentMsg(2, 'usage', '{"v":1,"node":"e9","requests":'), agentMsg(3, 'usage', JSON.stringify(usage({ node: 'edge-p' })))];
    expect((await forwardAs(H, neighbour)).status).toBe(200);
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(hub)) === 0, 30_000, 'edge and hub to drain');
    await waitFor(async () => (await db.sql`select count(*)::int as n from edgectl_heartbeats where node = 'edge-p'`)[0].n >= 2, 30_000, 'two edge heartbeats');

    const rows = await db.sql`select id, tenant, topic, content_type, body, node, accepted_at from edgectl_messages where tenant = 'acme' order by seq`;
    // Per topic in the order sent (topics are separate queues, so not across them).
    for (const topic of ['t1', 't2']) {
      expect(rows.filter((r) => r.topic === topic).map((r) => r.id)).toEqual([...sent].filter(([, [t]]) => t === topic).map(([id]) => id));
    }
    expect(rows).toHaveLength(sent.size);
    for (const r of rows) {
      const [topic, type, body] = sent.get(r.id as string)!;
      expect([r.topic, r.content_type, Buffer.from(r.body as Buffer).equals(body), r.node]).toEqual([topic, type, true, 'edge-p']);
      expect(Math.abs((r.accepted_at as Date).getTime() - ts)).toBeLessThan(60_000);
    }
    const latest = await db.sql`select node, body, time from edgectl_heartbeats_latest order by node`;
    expect(latest.map((r) => [r.node, (r.body as { node: string }).node])).toEqual([['edge-p', 'edge-p'], ['hub-p', 'hub-p']]);
    const [newest] = await db.sql`select max(time) as t from edgectl_heartbeats where node = 'edge-p'`;
    expect((latest[0].time as Date).getTime()).toBe((newest.t as Date).getTime());
    const u = await db.sql`select node, source, tenant, app, requests, status_4xx, cache_miss, message_id from edgectl_usage_minutes`;
    expect(u.map((r) => ({ ...r }))).toEqual([{ node: 'e9', source: 'nginx', tenant: 'acme', app: 'acme-web', requests: '12', status_4xx: '2', cache_miss: '9', message_id: 'e9:n1:1' }]);
    const bad = await db.sql`select id, problem from edgectl_messages where tenant = '_agent' order by id`;
    expect(bad.map((r) => r.id)).toEqual(['e9:n1:2', 'e9:n1:3']);
    expect(bad[0].problem).toMatch(/not JSON/);
    expect(bad[1].problem).toMatch(/names node "edge-p", but its message comes from e9/);
    expect(hub.log.join('')).toMatch(/not a heartbeat or usage minute were stored in edgectl_messages.*"count":2/);
    expect(hub.log.join('') + JSON.stringify(await status(hub))).not.toContain(PASSWORD);
  });

  it('keeps everything while PostgreSQL is unreachable (at start, then mid-run), and delivers every message once it is back', async () => {
    const db = await newDb();
    const proxyPort = await freePort();
    let proxy: WanProxy | undefined;
    const up = async () => { proxy = await startWanProxy({ listen: { host: '127.0.0.1', port: proxyPort }, target: { host: PG_HOST, port: PG_PORT }, delayMs: 0, handshake: false }); };
    const down = async () => { await proxy?.close(); proxy = undefined; };
    const H = await freePortRange(2);
    // Down at start: the hub comes up all the same, keeps what it is sent, and migrates later.
    const hub = await startAgent('hub-o', H, H + 1, hubArgs('hub-o', db.url({ port: proxyPort, password: PASSWORD }), ['--heartbeat-seconds', '0']));
    try {
      expect(hub.log.join('')).toMatch(/PostgreSQL is unreachable at start/);
      let n = 0;
      const send = async (count: number) => {
        const msgs = Array.from({ length: count }, (): SpoolMessage => ({ id: `${NEIGHBOUR}:o1:${++n}`, tenant: 'acme', topic: 't1', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(`m${n}`) }));
        expect((await forwardAs(H, msgs)).status).toBe(200);
        return msgs.map((m) => m.id);
      };
      const ids = await send(20);
      await waitFor(async () => (await status(hub)).forward.errors >= 2, 30_000, 'failed deliveries while PostgreSQL is away');
      expect(await depth(hub)).toBe(20);
      await up();
      await waitFor(async () => (await depth(hub)) === 0, 60_000, 'delivery once PostgreSQL is reachable');
      expect((await db.sql`select version from edgectl_schema_migrations`).map((r) => r.version)).toEqual([1]);
      // Down mid-run: the live connection is cut.
      await down();
      const before = (await status(hub)).forward.errors as number;
      ids.push(...await send(30), ...await send(30));
      await waitFor(async () => (await status(hub)).forward.errors >= before + 2, 30_000, 'failed deliveries after the cut');
      const s = await status(hub);
      expect(s.forward.lastError.message).toMatch(new RegExp(`^PostgreSQL 127\\.0\\.0\\.1:${proxyPort}/${db.name}: `));
      expect(await depth(hub)).toBe(60);
      expect(hub.log.join('') + JSON.stringify(s)).not.toContain(PASSWORD);
      await up();
      await waitFor(async () => (await depth(hub)) === 0, 60_000, 'delivery after PostgreSQL came back');
      const got = (await db.sql`select id from edgectl_messages order by seq`).map((r) => r.id);
      expect(got).toEqual(ids);
    } finally {
      await down();
    }
  });

  it('the bundled agent (dist/agent/edgectl-agent.cjs) runs the hub with the PostgreSQL sink', async () => {
    const db = await newDb();
    const H = await freePortRange(2);
    const root = path.join(dir, 'bundle-root');
    await mkdir(root, { recursive: true });
    const config = path.join(dir, 'bundle-agent.json');
    await writeFile(config, JSON.stringify({
      format: 'edgectl-agent/v1', node: 'hub-b', role: 'hub', listen: `127.0.0.1:${H}`, admin: `127.0.0.1:${H + 1}`, dataDir: path.join(dir, 'hub-b'),
      maxMessageBytes: 1 << 20, upstreams: [], acceptForward: [{ node: NEIGHBOUR, sha256: sha('hop') }], sink: db.url(), heartbeatSeconds: 0,
      tenants: [{ name: 'acme', tokens: [], topics: [{ name: 't1' }], spoolBytes: 1 << 26 }],
    }));
    const proc = spawn(process.execPath, [path.join(REPO, 'dist/agent/edgectl-agent.cjs'), '--root', root, '--config', config, '--nginx-binary', '/bin/false'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    try {
      await waitFor(() => /"agent running"/.test(log) || proc.exitCode !== null, 60_000, 'the bundled hub to start');
      expect(log).toMatch(/"applied PostgreSQL migrations"/);
      const msgs = [1, 2, 3].map((i): SpoolMessage => ({ id: `${NEIGHBOUR}:b1:${i}`, tenant: 'acme', topic: 't1', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(`b${i}`) }));
      expect((await forwardAs(H, msgs)).status).toBe(200);
      await waitFor(async () => (await db.sql`select count(*)::int as n from edgectl_messages`)[0].n === 3, 30_000, 'rows from the bundled hub');
      expect((await db.sql`select id, body from edgectl_messages order by seq`).map((r) => [r.id, Buffer.from(r.body as Buffer).toString()])).toEqual(msgs.map((m) => [m.id, m.body.toString()]));
    } finally {
      proc.kill('SIGKILL');
      if (proc.exitCode === null && proc.signalCode === null) await new Promise((r) => proc.once('exit', r));
    }
  });
});
