import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSink, parsePostgresSink } from '../../src/lib/agent/sinks/postgres.js';
import { redactSpec } from '../../src/lib/agent/sinks/pg/redact.js';
import { createSink } from '../../src/lib/agent/sinks/index.js';
import { arrayLiteral } from '../../src/lib/agent/sinks/pg/array.js';
import type { SpoolMessage } from '../../src/lib/agent/store/record.js';
import type { Heartbeat, UsageMinute } from '../../src/lib/agent/telemetry.js';
import { silentLogger } from '../../src/lib/logger.js';
import { createTestDb, type TestDb } from './pg-db.js';

// The PostgreSQL sink's rows, straight through PostgresSink against the real server: what each
// table holds, exactly once on a replay, and hostile agent bodies that must neither stop the
// queue (one bad row would fail its whole batch, forever) nor be lost.

let db: TestDb;
let sink: PostgresSink;
beforeAll(async () => {
  db = await createTestDb('edgectl_pgsink_bodies');
  sink = new PostgresSink(parsePostgresSink(db.url()), silentLogger);
  await sink.start();
});
afterAll(async () => {
  await sink?.close();
  await db?.drop();
});

const T0 = Date.parse('2026-12-02T06:00:00.000Z');
let seq = 0;
const msg = (node: string, tenant: string, topic: string, body: string | Buffer, extra: Partial<SpoolMessage> = {}): SpoolMessage => ({
  id: `${node}:e1:${++seq}`, tenant, topic, contentType: 'application/json', ts: T0 + seq, body: Buffer.isBuffer(body) ? body : Buffer.from(body), ...extra,
});
const beat = (node: string, time: string, more: Record<string, unknown> = {}): string => JSON.stringify({
  node, role: 'edge', time, store: 'open', depth: 3, bytes: 120, quarantined: 0, lastForward: null, ...more,
} satisfies Heartbeat & Record<string, unknown>);
const minute = (node: string, over: Partial<UsageMinute> = {}): UsageMinute => ({
  v: 1, node, source: 'nginx', tenant: 'acme', app: 'acme-web', minute: '2026-12-02T06:41:00.000Z', requests: 7, bytesIn: 700, bytesOut: 9_000_000_000,
  status: { '1xx': 0, '2xx': 5, '3xx': 1, '4xx': 1, '5xx': 0 }, cache: { hit: 2, miss: 5 }, upstreamMs: { p50: 1.5, p90: 4, p99: 9.25, max: 12 }, ...over,
});
const counts = async () => (await db.sql`select
  (select count(*)::int from edgectl_messages) as messages, (select count(*)::int from edgectl_heartbeats) as beats,
  (select count(*)::int from edgectl_heartbeats_latest) as latest, (select count(*)::int from edgectl_usage_minutes) as usage`)[0];

describe('postgres sink rows', () => {
  it('stores device messages byte for byte, heartbeats (latest and history) and usage minutes column by column, once', async () => {
    const binary = Buffer.from([0, 1, 2, 0xff, 0x5c, 0x22, 0x7b]);
    const batch = [
      msg('edge1', 'acme', 'events', '{"t":1}'),
      msg('edge1', 'acme', 'raw', binary, { contentType: 'application/octet-stream' }),
      msg('edge1', '_agent', 'heartbeat', beat('edge1', '2026-12-02T06:00:05.000Z')),
      msg('edge1', '_agent', 'heartbeat', beat('edge1', '2026-12-02T06:00:35.000Z', { depth: 4 })),
      msg('edge1', '_agent', 'usage', JSON.stringify(minute('edge1'))),
      msg('edge1', '_agent', 'usage', JSON.stringify(minute('edge1', { source: 'httpq', app: 'events', upstreamMs: null }))),
    ];
    await sink.deliver({ messages: () => batch });
    const rows = await db.sql`select id, tenant, topic, content_type, body, node, accepted_at, problem from edgectl_messages order by seq`;
    expect(rows.map((r) => [r.id, r.tenant, r.topic, r.content_type, Buffer.from(r.body as Buffer).toString('hex'), r.node, (r.accepted_at as Date).getTime(), r.problem])).toEqual([
      [batch[0].id, 'acme', 'events', 'application/json', Buffer.from('{"t":1}').toString('hex'), 'edge1', batch[0].ts, null],
      [batch[1].id, 'acme', 'raw', 'application/octet-stream', binary.toString('hex'), 'edge1', batch[1].ts, null],
    ]);
    const latest = await db.sql`select node, time, body from edgectl_heartbeats_latest`;
    expect(latest.map((r) => [r.node, (r.time as Date).toISOString(), (r.body as Heartbeat).depth])).toEqual([['edge1', '2026-12-02T06:00:35.000Z', 4]]);
    expect((await db.sql`select message_id from edgectl_heartbeats order by time`).map((r) => r.message_id)).toEqual([batch[2].id, batch[3].id]);
    const usage = await db.sql`select * from edgectl_usage_minutes order by source`;
    expect(usage.map((u) => [u.node, u.source, u.tenant, u.app, (u.minute as Date).toISOString(), u.requests, u.bytes_in, u.bytes_out,
      u.status_1xx, u.status_2xx, u.status_3xx, u.status_4xx, u.status_5xx, u.cache_hit, u.cache_miss, u.upstream_ms_p50, u.upstream_ms_p90, u.upstream_ms_p99, u.upstream_ms_max, u.message_id])).toEqual([
      ['edge1', 'httpq', 'acme', 'events', '2026-12-02T06:41:00.000Z', '7', '700', '9000000000', '0', '5', '1', '1', '0', '2', '5', null, null, null, null, batch[5].id],
      ['edge1', 'nginx', 'acme', 'acme-web', '2026-12-02T06:41:00.000Z', '7', '700', '9000000000', '0', '5', '1', '1', '0', '2', '5', 1.5, 4, 9.25, 12, batch[4].id],
    ]);
    // The hub died before its spool's delete: the same batch again changes nothing.
    const before = await counts();
    await sink.deliver({ messages: () => batch });
    expect(await counts()).toEqual(before);
    // The same usage minute under another message id (a re-read after a crash) keeps the first copy.
    await sink.deliver({ messages: () => [msg('edge1', '_agent', 'usage', JSON.stringify(minute('edge1', { requests: 99 })))] });
    expect((await db.sql`select requests from edgectl_usage_minutes where source = 'nginx'`)[0].requests).toBe('7');
  });

  it('moves the latest heartbeat only forward: a late repeat lands in the history and leaves the newer beat', async () => {
    await sink.deliver({ messages: () => [msg('edge2', '_agent', 'heartbeat', beat('edge2', '2026-12-02T07:00:00.000Z', { depth: 10 }))] });
    await sink.deliver({ messages: () => [msg('edge2', '_agent', 'heartbeat', beat('edge2', '2026-12-02T06:59:30.000Z', { depth: 9 }))] });
    const latest = await db.sql`select time, body from edgectl_heartbeats_latest where node = 'edge2'`;
    expect(latest.map((r) => [(r.time as Date).toISOString(), (r.body as Heartbeat).depth])).toEqual([['2026-12-02T07:00:00.000Z', 10]]);
    expect((await db.sql`select count(*)::int as n from edgectl_heartbeats where node = 'edge2'`)[0].n).toBe(2);
  });

  it('stores hostile agent bodies as messages with their problem, counts them, and delivers the rest of the batch', async () => {
    const nested = '{"a":'.repeat(40) + '1' + '}'.repeat(40);
    const hostile: [string, string | Buffer, RegExp][] = [
      ['usage', 'not json', /not JSON/],
      ['usage', JSON.stringify(minute('edge9')), /names node "edge9", but its message comes from edge3/],
      ['usage', JSON.stringify(minute('edge3', { requests: -1 })), /requests/],
      ['usage', JSON.stringify(minute('edge3', { minute: '2026-12-02T06:41:30.000Z' })), /does not start a minute/],
      ['usage', JSON.stringify(minute('edge3', { tenant: "acme'; drop table x" })), /tenant/],
      ['usage', JSON.stringify({ ...minute('edge3'), v: 2 }), /version/],
      ['heartbeat', beat('edge3', '2026-12-02T06:00:00.000Z', { note: 'a\u0000b' }), /NUL/],
      ['heartbeat', `{"node":"edge3","role":"edge","time":"2026-12-02T06:00:00Z","store":"open","depth":0,"bytes":0,"quarantined":0,"lastForward":null,"\\ud800":1}`, /lone surrogate/],
      ['heartbeat', beat('edge3', '-271821-04-20T00:00:00.000Z'), /time/],
      ['heartbeat', beat('edge3', '2026-12-02T06:00:00.000Z', { x: JSON.parse(nested) }), /deeper/],
      ['heartbeat', beat('edge3', '2026-12-02T06:00:00.000Z', { depth: 'deep' }), /depth/],
      ['heartbeat', '[1,2]', /not a JSON object/],
    ];
    const bad = hostile.map(([topic, body]) => msg('edge3', '_agent', topic, body));
    const good = msg('edge3', 'acme', 'events', 'fine', { ts: 1e300 }); // a hop's time out of range: stored, time null
    const beatOk = msg('edge3', '_agent', 'heartbeat', beat('edge3', '2026-12-02T06:10:00.000Z'));
    const before = sink.malformed;
    await sink.deliver({ messages: () => [...bad, good, beatOk] });
    expect(sink.malformed - before).toBe(hostile.length);
    const rows = await db.sql`select id, tenant, topic, body, accepted_at, problem from edgectl_messages where node = 'edge3' order by seq`;
    expect(rows.map((r) => r.id)).toEqual([...bad, good].map((m) => m.id));
    rows.slice(0, hostile.length).forEach((r, i) => {
      expect([r.tenant, r.topic, Buffer.from(r.body as Buffer).equals(bad[i].body)]).toEqual(['_agent', hostile[i][0], true]);
      expect(r.problem).toMatch(hostile[i][2]);
    });
    expect(rows.at(-1)).toMatchObject({ tenant: 'acme', accepted_at: null, problem: null });
    expect((await db.sql`select count(*)::int as n from edgectl_heartbeats_latest where node = 'edge3'`)[0].n).toBe(1);
    expect((await db.sql`select count(*)::int as n from edgectl_usage_minutes where node in ('edge3', 'edge9')`)[0].n).toBe(0);
  });

  it('fails a batch that gets no answer in time (drops the connection), and stores it once on the next try', async () => {
    const quick = new PostgresSink(parsePostgresSink(db.url(), 1000), silentLogger);
    const batch = [msg('edge4', 'acme', 'events', 'held'), msg('edge4', 'acme', 'events', 'up')];
    const blocker = await db.sql.reserve();
    try {
      await quick.start();
      await blocker`begin`;
      await blocker`lock table edgectl_messages in exclusive mode`;
      const t0 = Date.now();
      await expect(quick.deliver({ messages: () => batch })).rejects.toThrow(/no answer within 1000 ms; connection dropped/);
      expect(Date.now() - t0).toBeLessThan(5000);
      await blocker`commit`;
      await quick.deliver({ messages: () => batch });
      expect((await db.sql`select id from edgectl_messages where node = 'edge4' order by seq`).map((r) => r.id)).toEqual(batch.map((m) => m.id));
    } finally {
      blocker.release();
      await quick.close();
    }
  });

  it('quotes array elements so that no value escapes its element', () => {
    expect(arrayLiteral(['a', 'b"c', 'd\\e', null, 'NULL', '}{,', 1.5])).toBe('{"a","b\\"c","d\\\\e",NULL,"NULL","}{,","1.5"}');
  });

  it('takes postgres:// and postgresql:// URLs, and never shows their password', async () => {
    expect(parsePostgresSink('postgresql://hub:pw-123@db.example:6432/edge?sslmode=require').where).toBe('db.example:6432/edge');
    expect(parsePostgresSink('postgres://hub:s3cret@db.example/edge').secrets).toContain('s3cret');
    const refusal = async (f: () => unknown) => { try { await f(); } catch (e) { return (e as Error).message; } return ''; };
    for (const [spec, want] of [
      ['postgres://hub:s3cret@db.example/edge?password=s3cret', /query parameter "password" is not supported/],
      ['postgres://hub:s3cret@db.example/', /names no database/],
      ['postgres://hub:s3cret@db.example/edge?sslmode=bogus', /sslmode must be one of/],
    ] as const) {
      const text = await refusal(() => parsePostgresSink(spec));
      expect(text).toMatch(want);
      expect(text).not.toContain('s3cret');
    }
    // A mistyped scheme is not parsed as a postgres URL, and still does not print its password.
    const typo = await refusal(() => createSink('postgress://hub:s3cret@db.example/edge', silentLogger, undefined as never));
    expect(typo).toBe('unknown sink "postgress://hub:***@db.example/edge": use file:PATH, http(s)://…, nats://HOST:PORT or postgres://USER@HOST:PORT/DATABASE');
    expect(redactSpec('postgres://hub:s3/c?r@t@db.example/edge')).toBe('postgres://hub:***@db.example/edge');
    expect(redactSpec('postgres://hub@db.example/edge')).toBe('postgres://hub@db.example/edge');
  });
});
