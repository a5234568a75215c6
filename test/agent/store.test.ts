import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Spool } from '../../src/lib/agent/store/spool.js';
import { SpoolFullError } from '../../src/lib/agent/store/errors.js';
import { silentLogger } from '../../src/lib/logger.js';
import { decodeBatch, encodeBatch, wireItems } from '../../src/lib/agent/forward/wire.js';
import { messageKey, queueEnd, queueName, queuePrefix } from '../../src/lib/agent/store/keys.js';

// The queue contract, run against the real store (classic-level on a temp directory).
let dir: string;
let spool: Spool;

async function openSpool(opts: { dedupeWindow?: number } = {}): Promise<Spool> {
  const s = new Spool({ dataDir: dir, log: silentLogger, node: 'edge1', ...opts });
  await s.open();
  return s;
}

const msg = (text: string) => ({ contentType: 'text/plain', body: Buffer.from(text) });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-store-'));
  spool = await openSpool();
});
afterEach(async () => {
  await spool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('spool queue contract', () => {
  it('keeps FIFO order per topic and survives a reopen with its counters', async () => {
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => spool.append('acme', 'events', [msg(`m${i}`)])));
    expect(new Set(ids.flat()).size).toBe(50);
    await spool.append('acme', 'other', [msg('x')]);
    await spool.close();
    spool = await openSpool();
    const st = await spool.status();
    expect(st.find((s) => s.topic === 'events')?.depth).toBe(50);
    const b = await spool.readBatch(1000, 1 << 20);
    const bodies = b.messages().filter((m) => m.topic === 'events').map((m) => m.body.toString());
    expect(bodies.slice(0, 3)).toEqual(['m0', 'm1', 'm2']);
    expect(bodies).toEqual([...bodies].sort((a, c) => Number(a.slice(1)) - Number(c.slice(1))));
    expect(b.messages().map((m) => m.id)).toEqual(expect.arrayContaining(ids.flat()));
  });

  it('acks advance the cursor: nothing is read twice, later batches continue where the last stopped', async () => {
    for (let i = 0; i < 30; i++) await spool.append('acme', 'events', [msg(String(i))]);
    const b1 = await spool.readBatch(10, 1 << 20);
    expect(b1.messages().map((m) => m.body.toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    await spool.ack(b1);
    const b2 = await spool.readBatch(10, 1 << 20);
    expect(b2.messages()[0].body.toString()).toBe('10');
    // Not acked (delivery failed): the next read starts at the same message.
    const b3 = await spool.readBatch(10, 1 << 20);
    expect(b3.messages()[0].body.toString()).toBe('10');
    expect((await spool.status())[0].depth).toBe(20);
  });

  it("reads the agent's own queue first, so a backlog of device data never starves heartbeats", async () => {
    // Single-message records (an NDJSON batch is one chunk, read whole; see the chunk test below).
    await Promise.all(Array.from({ length: 100 }, () => spool.append('acme', 'bulk', [msg('data')])));
    await spool.append('_agent', 'heartbeat', [msg('beat')]);
    const b = await spool.readBatch(10, 1 << 20, new Set(['_agent']));
    expect(b.messages()[0].tenant).toBe('_agent');
    expect(b.count).toBe(10);
  });

  it('NDJSON-style multi-message appends are all or nothing and quota rejects whole batches', async () => {
    const ids = await spool.append('acme', 't', [msg('a'), msg('b'), msg('c')], { quotaBytes: 10_000 });
    expect(ids).toHaveLength(3);
    await expect(spool.append('acme', 't', Array.from({ length: 200 }, () => msg('x'.repeat(100))), { quotaBytes: 10_000 })).rejects.toBeInstanceOf(SpoolFullError);
    expect((await spool.status())[0].depth).toBe(3);
  });

  it('a device batch is stored as chunk records: one entry per chunk, ids consecutive, read and deleted whole', async () => {
    const small = new Spool({ dataDir: path.join(dir, 'chunked'), log: silentLogger, node: 'edge1', chunkMessages: 4, chunkBytes: 1 << 20 });
    await small.open();
    try {
      const ids = await small.append('acme', 'gps', Array.from({ length: 10 }, (_, i) => msg(`p${i}`)));
      const seqs = ids.map((id) => Number(id.split(':')[2]));
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
      expect(new Set(ids.map((id) => id.split(':').slice(0, 2).join(':'))).size).toBe(1);
      // 10 messages in chunks of at most 4: 3 records on disk, not 10.
      let records = 0;
      for await (const _ of small.core.db.keys({ gte: Buffer.from('m'), lt: Buffer.from('n') })) records++;
      expect(records).toBe(3);
      expect((await small.status())[0].depth).toBe(10);
      // A batch smaller than a chunk still takes the first chunk whole, and stops before the next.
      const b1 = await small.readBatch(2, 1 << 20);
      expect(b1.messages().map((m) => m.body.toString())).toEqual(['p0', 'p1', 'p2', 'p3']);
      expect(b1.messages().map((m) => m.id)).toEqual(ids.slice(0, 4));
      const b2 = await small.readBatch(6, 1 << 20);
      expect(b2.messages().map((m) => m.body.toString())).toEqual(['p0', 'p1', 'p2', 'p3']);
      await small.ack(b1);
      const st = (await small.status())[0];
      expect([st.depth, st.bytes]).toEqual([6, expect.any(Number)]);
      // peek sees messages, not records, and honours its limit inside a chunk.
      expect((await small.peek('acme', 'gps', 5)).map((m) => [m.body.toString(), m.id])).toEqual(['p4', 'p5', 'p6', 'p7', 'p8'].map((b, i) => [b, ids[4 + i]]));
      // Counters survive a reopen; what is left reads in order.
      await small.close();
      await small.open();
      const rest = await small.readBatch(100, 1 << 20);
      expect(rest.messages().map((m) => m.body.toString())).toEqual(['p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
      expect(rest.bytes).toBe((await small.status())[0].bytes);
      await small.ack(rest);
      expect((await small.status())[0]).toMatchObject({ depth: 0, bytes: 0 });
      // Drops count messages, not records.
      await small.append('acme', 'gps', Array.from({ length: 8 }, (_, i) => msg(`d${i}`.padEnd(100, '.'))));
      expect(await small.dropOldest('acme', 'gps', 1)).toBe(4);
      expect((await small.status())[0]).toMatchObject({ depth: 4, dropped: 4 });
    } finally {
      await small.close();
    }
  });

  it('a chunk record that cannot be decoded is set aside with its message count, and the queue moves on', async () => {
    await spool.append('acme', 't', [msg('a'), msg('b'), msg('c')]);
    await spool.append('acme', 't', [msg('d')]);
    const [[key, value]] = await spool.core.db.iterator({ gte: Buffer.from('m'), lt: Buffer.from('n'), limit: 1 }).all();
    // Truncate the chunk's last body: the header still says 3 messages.
    await spool.core.db.put(key, value.subarray(0, value.length - 1), { sync: true });
    const b = await spool.readBatch(100, 1 << 20);
    expect(b.messages().map((m) => m.body.toString())).toEqual(['d']);
    expect((await spool.status())[0]).toMatchObject({ depth: 1, corrupt: 3 });
  });

  it('drop-oldest makes room by dropping the head and counts every drop', async () => {
    for (let i = 0; i < 20; i++) await spool.append('acme', 't', [msg(String(i).padStart(100, '0'))], { quotaBytes: 1500, whenFull: 'drop-oldest' });
    const st = (await spool.status())[0];
    expect(st.dropped).toBeGreaterThan(0);
    expect(st.depth + st.dropped).toBe(20);
    const b = await spool.readBatch(100, 1 << 20);
    expect(Number(b.messages()[b.count - 1].body.toString())).toBe(19);
    expect(Number(b.messages()[0].body.toString())).toBe(st.dropped);
  });

  it('drop-oldest still makes room while the head is in flight to a hung upstream; the late ack counts nothing twice', async () => {
    for (let i = 0; i < 10; i++) await spool.append('acme', 'r', [msg(String(i).padStart(100, '0'))], { quotaBytes: 1500, whenFull: 'drop-oldest' });
    const inflight = await spool.readBatch(100, 1 << 20);
    for (let i = 10; i < 20; i++) await spool.append('acme', 'r', [msg(String(i).padStart(100, '0'))], { quotaBytes: 1500, whenFull: 'drop-oldest' });
    await spool.ack(inflight);
    const st = (await spool.status())[0];
    expect(st.dropped).toBeGreaterThan(0);
    const left = await spool.readBatch(100, 1 << 20);
    expect(left.count).toBe(st.depth);
    expect(st.bytes).toBe(left.bytes);
    expect(Number(left.messages()[left.count - 1].body.toString())).toBe(19);
  });

  it('idempotency keys return the first ids without a second copy', async () => {
    const [a, b] = await Promise.all([
      spool.append('acme', 't', [msg('1')], { idempotencyKey: 'k1' }),
      spool.append('acme', 't', [msg('1')], { idempotencyKey: 'k1' }),
    ]);
    const c = await spool.append('acme', 't', [msg('1')], { idempotencyKey: 'k1' });
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect((await spool.status())[0].depth).toBe(1);
  });

  it('forwarded messages are deduplicated by id across reopen, within a bounded window', async () => {
    const m = (id: string) => ({ id, tenant: 'acme', topic: 't', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(id) });
    expect(await spool.appendForwarded([m('e:1:1'), m('e:1:2'), m('e:1:2')])).toEqual({ accepted: 2, duplicates: 1 });
    await spool.close();
    spool = await openSpool({ dedupeWindow: 10 });
    expect(await spool.appendForwarded([m('e:1:1'), m('e:1:3')])).toEqual({ accepted: 1, duplicates: 1 });
    expect(spool.core.dedupe.size).toBe(3);
  });

  it('repeats are remembered per sender: ids one sender sent first are not duplicates when another sends them', async () => {
    const m = (id: string) => ({ id, tenant: 'acme', topic: 't', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(id) });
    expect(await spool.appendForwarded([m('a:1:1'), m('a:1:2')], { sender: 'relay-x' })).toEqual({ accepted: 2, duplicates: 0 });
    expect(await spool.appendForwarded([m('a:1:1'), m('a:1:2'), m('a:1:3')], { sender: 'a' })).toEqual({ accepted: 3, duplicates: 0 });
    expect(await spool.appendForwarded([m('a:1:3')], { sender: 'a' })).toEqual({ accepted: 0, duplicates: 1 });
  });

  it('drop-oldest tenants among forwarded items make room instead of refusing the batch', async () => {
    const hb = (i: number) => ({ id: `r:1:${i}`, tenant: '_agent', topic: 'heartbeat', contentType: 'application/json', ts: Date.now(), body: Buffer.alloc(100, 120) });
    const opts = { sender: 'r', quotaOf: () => 1000, dropOldest: () => true };
    for (let i = 0; i < 30; i++) expect(await spool.appendForwarded([hb(i)], opts)).toEqual({ accepted: 1, duplicates: 0 });
    const [q] = await spool.status();
    expect(q.bytes).toBeLessThanOrEqual(1000);
    expect(q.dropped + q.depth).toBe(30);
    await expect(spool.appendForwarded([hb(99)], { sender: 'r', quotaOf: () => 1000 })).rejects.toThrow(SpoolFullError);
  });

  it('a repeat that arrives while the first copy is being written waits for that write, and is stored if it fails', async () => {
    const m = { id: 'e:1:9', tenant: 'acme', topic: 't', contentType: 'text/plain', ts: Date.now(), body: Buffer.from('x') };
    // The first write fails after a while (as a full disk would); the others are real.
    const real = spool.core.commit.bind(spool.core);
    let calls = 0;
    spool.core.commit = (ops) => (++calls === 1 ? new Promise((_, reject) => setTimeout(() => reject(new Error('disk gone')), 50)) : real(ops));
    const first = spool.appendForwarded([m]);
    const retry = spool.appendForwarded([m]);
    await expect(first).rejects.toThrow('disk gone');
    // Not a duplicate: the sender would delete its only copy.
    expect(await retry).toEqual({ accepted: 1, duplicates: 0 });
    expect((await spool.readBatch(10, 1 << 20)).messages().map((x) => x.id)).toEqual(['e:1:9']);
    expect(await spool.appendForwarded([m])).toEqual({ accepted: 0, duplicates: 1 });
  });

  it('a chunk travels as a run: the next hop stores it as one record with the first hop ids, and drops a repeat', async () => {
    const ids = await spool.append('acme', 't', [msg('a'), msg('b'), msg('c')]);
    await spool.append('acme', 't', [msg('single')]);
    const b = await spool.readBatch(100, 1 << 20);
    expect(b.records.map((r) => r.count)).toEqual([3, 1]);
    // Over the wire and back, as a hop does it.
    const items = decodeBatch(encodeBatch(wireItems(b.records)));
    expect(items).toHaveLength(2);
    const relayDir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-relay-'));
    const relay = new Spool({ dataDir: relayDir, log: silentLogger, node: 'relay1' });
    await relay.open();
    try {
      expect(await relay.appendForwarded(items)).toEqual({ accepted: 4, duplicates: 0 });
      expect(await relay.appendForwarded(items)).toEqual({ accepted: 0, duplicates: 4 });
      const st = (await relay.status())[0];
      expect([st.depth, relay.core.dedupe.size]).toEqual([4, 2]);
      const rb = await relay.readBatch(100, 1 << 20);
      expect(rb.records.map((r) => r.count)).toEqual([3, 1]);
      expect(rb.messages().map((m) => [m.id, m.body.toString()])).toEqual([[ids[0], 'a'], [ids[1], 'b'], [ids[2], 'c'], [expect.stringMatching(/^edge1:/), 'single']]);
      expect(rb.bytes).toBe(st.bytes);
      // And on to the hop after: the run keeps the first hop's ids there too.
      expect(decodeBatch(encodeBatch(wireItems(rb.records))).map((x) => ('bodies' in x ? `${x.idPrefix}${x.first}+${x.count}` : x.id))).toEqual([`${ids[0]}+3`, expect.stringMatching(/^edge1:/)]);
      await relay.ack(rb);
      expect((await relay.status())[0]).toMatchObject({ depth: 0, bytes: 0 });
    } finally {
      await relay.close();
      await rm(relayDir, { recursive: true, force: true });
    }
  });

  it('a relay whose tenant quota is full refuses a whole run (nothing stored, not remembered), then takes it once there is room', async () => {
    const run = { idPrefix: 'e:1:', first: 1, count: 3, tenant: 'acme', topic: 't', contentType: 'a/b', ts: 1, bodies: Buffer.concat(['aaaa', 'bbbb', 'cccc'].map((x) => Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from(x)]))) };
    await spool.append('acme', 't', [msg('x'.repeat(100))]);
    const used = (await spool.status())[0].bytes;
    await expect(spool.appendForwarded([run], { quotaOf: () => used + 10 })).rejects.toThrow(SpoolFullError);
    expect((await spool.status())[0].depth).toBe(1);
    expect(spool.core.dedupe.size).toBe(0);
    expect(await spool.appendForwarded([run], { quotaOf: () => used + 1000 })).toEqual({ accepted: 3, duplicates: 0 });
    expect((await spool.status())[0].depth).toBe(4);
  });

  it('a run record whose bodies do not fill it is set aside when read, and its messages counted as corrupt', async () => {
    const items = decodeBatch(encodeBatch([{ idPrefix: 'e:1:', first: 7, count: 2, tenant: 'acme', topic: 't', contentType: 'a/b', ts: 1, bodies: Buffer.from([0, 0, 0, 1, 65, 0, 0, 0, 1, 66]) }]));
    expect(await spool.appendForwarded(items)).toEqual({ accepted: 2, duplicates: 0 });
    const q = queueName('acme', 't');
    const [[key, stored]] = await spool.core.db.iterator({ gte: messageKey(queuePrefix(q), 0), lt: queueEnd(q) }).all();
    await spool.core.db.put(key, stored.subarray(0, stored.length - 1));
    const b = await spool.readBatch(100, 1 << 20);
    expect(b.count).toBe(0);
    expect((await spool.status())[0]).toMatchObject({ depth: 0, corrupt: 2 });
  });

  it('reading a batch leaves no copy of it in native memory (classic-level keeps the last read until a GC)', async () => {
    const anon = async () => Number(/RssAnon:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))![1]) / 1024;
    const big = new Spool({ dataDir: path.join(dir, 'big'), log: silentLogger, chunkBytes: 4 << 20 });
    await big.open();
    try {
      await big.append('acme', 't', Array.from({ length: 1000 }, () => ({ contentType: 'a/b', body: Buffer.alloc(900, 120) })));
      const before = await anon();
      for (let i = 0; i < 300; i++) expect((await big.readBatch(1000, 4 << 20)).count).toBe(1000);
      // 300 reads of a 900 KB record: 270 MB if each read stayed pinned (measured 281 MB before the fix, 23 MB after).
      expect((await anon()) - before).toBeLessThan(100);
    } finally {
      await big.close();
    }
  });

  it('expires messages past their TTL and counts them', async () => {
    await spool.append('acme', 't', [msg('old'), msg('old2')]);
    await new Promise((r) => setTimeout(r, 30));
    await spool.append('acme', 't', [msg('new')]);
    expect(await spool.expire('acme', 't', Date.now() - 20)).toBe(2);
    const st = (await spool.status())[0];
    expect([st.depth, st.expired]).toEqual([1, 2]);
  });

  it('purge removes a queue, says how much, and the queue keeps working', async () => {
    await spool.append('acme', 't', [msg('a'), msg('b')]);
    expect(await spool.purge('acme', 't')).toEqual([{ tenant: 'acme', topic: 't', count: 2, bytes: expect.any(Number) }]);
    await spool.append('acme', 't', [msg('c')]);
    const b = await spool.readBatch(10, 1 << 20);
    expect(b.messages().map((m) => m.body.toString())).toEqual(['c']);
  });

  it('a store with garbage in its files is repaired or quarantined, never deleted, and opens', async () => {
    await spool.append('acme', 't', [msg('a')]);
    await spool.close();
    const store = path.join(dir, 'spool');
    for (const f of await readdir(store)) await writeFile(path.join(store, f), 'garbage'.repeat(100));
    spool = await openSpool();
    expect(spool.incidents.length).toBeGreaterThan(0);
    expect(spool.state).toBe('open');
    await spool.append('acme', 't', [msg('b')]);
    if (spool.incidents.some((i) => i.kind === 'quarantined')) {
      const moved = spool.incidents.find((i) => i.movedTo)!.movedTo!;
      expect((await readdir(moved)).length).toBeGreaterThan(0);
    }
  });
});
