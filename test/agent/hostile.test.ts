import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../helpers/ports.js';
import { type AgentProc, admin, depth, killAll, post, sha, startAgent, status, waitFor } from './helpers.js';
import { encodeBatch } from '../../src/lib/agent/forward/wire.js';

// An edge agent whose upstream is a closed port: nothing drains, so quotas can be reached.
// Free ports, found in beforeAll: the device API, the admin API, and an upstream where nothing listens.
let PORT: number;
let ADMIN: number;
let UPSTREAM: number;
let dir: string;
let edge: AgentProc;
const auth = { authorization: 'Bearer tok-acme' };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-hostile-'));
  [PORT, ADMIN, UPSTREAM] = await freePorts(3);
  const config = {
    format: 'edgectl-agent/v1', node: 'edge-h', role: 'edge', listen: `127.0.0.1:${PORT}`, admin: `127.0.0.1:${ADMIN}`,
    dataDir: path.join(dir, 'data'), maxMessageBytes: 1024, maxBatchMessages: 50, upstreams: [`http://127.0.0.1:${UPSTREAM}/v1/forward`],
    acceptForward: [{ node: 'e1', sha256: sha('hop-secret') }], requestTimeoutMs: 1000, heartbeatSeconds: 0,
    tenants: [
      { name: 'acme', tokens: [sha('tok-acme')], spoolBytes: 20_000, topics: [{ name: 'events' }, { name: 'ring', whenFull: 'drop-oldest' }, { name: 'short', ttlSeconds: 1 }] },
      { name: 'slowco', tokens: [sha('tok-slow')], spoolBytes: 1_000_000, requestsPerSecond: 2, topics: [{ name: 'events' }] },
    ],
  };
  await writeFile(path.join(dir, 'agent.json'), JSON.stringify(config));
  edge = await startAgent('edge-h', PORT, ADMIN, ['--config', path.join(dir, 'agent.json')]);
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('device API limits', () => {
  it('rejects missing and unknown tokens with 401, undeclared topics with 403, bad topic names with 400', async () => {
    expect((await post(PORT, 'events', 'x')).status).toBe(401);
    expect((await post(PORT, 'events', 'x', { authorization: 'Basic abc' })).status).toBe(401);
    const bad = await post(PORT, 'events', 'x', { authorization: 'Bearer nope' });
    expect([bad.status, bad.json.error]).toEqual([401, 'unauthorized']);
    const other = await post(PORT, 'orders', 'x', auth);
    expect([other.status, other.json.error]).toEqual([403, 'topic_not_allowed']);
    for (const t of ['..%2Fetc', 'UPPER', 'a%00b', 'x'.repeat(80), '.hidden', 'a%20b']) {
      const r = await post(PORT, t, 'x', auth);
      expect([t, r.status, r.json.error]).toEqual([t, 400, 'invalid_topic']);
    }
    expect(await depth(edge)).toBe(0);
  });

  it('answers 413 for an oversized message (declared or streamed) and stores nothing', async () => {
    const big = await post(PORT, 'events', 'x'.repeat(1025), auth);
    expect([big.status, big.json.error]).toEqual([413, 'too_large']);
    // Chunked (no Content-Length): the limit is enforced while streaming.
    const stream = new ReadableStream({ start(c) { for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('y'.repeat(200))); c.close(); } });
    const r = await fetch(`http://127.0.0.1:${PORT}/v1/q/events`, { method: 'POST', body: stream, headers: auth, duplex: 'half' } as RequestInit).catch((e) => e as Error);
    if (!(r instanceof Error)) expect(r.status).toBe(413);
    expect(await depth(edge)).toBe(0);
  });

  it('stores NDJSON batches all or nothing: a bad line is 400, too many lines 413', async () => {
    const bad = await post(PORT, 'events', '{"a":1}\n{"b":\n{"c":3}\n', { ...auth, 'content-type': 'application/x-ndjson' });
    expect([bad.status, bad.json.error]).toEqual([400, 'malformed_batch']);
    expect(bad.json.message).toMatch(/line 2/);
    const many = await post(PORT, 'events', '{}\n'.repeat(51), { ...auth, 'content-type': 'application/x-ndjson' });
    expect(many.status).toBe(413);
    expect(await depth(edge)).toBe(0);
    const ok = await post(PORT, 'events', '{"a":1}\n{"b":2}\n', { ...auth, 'content-type': 'application/x-ndjson' });
    expect(ok.status).toBe(202);
    expect(ok.json.ids).toHaveLength(2);
    expect(await depth(edge)).toBe(2);
  });

  it('Idempotency-Key returns the first id without a second copy; a hostile key is 400', async () => {
    const before = await depth(edge);
    const a = await post(PORT, 'events', 'once', { ...auth, 'idempotency-key': 'order-42' });
    const b = await post(PORT, 'events', 'once', { ...auth, 'idempotency-key': 'order-42' });
    expect(a.status).toBe(202);
    expect(b.json.id).toBe(a.json.id);
    expect(await depth(edge)).toBe(before + 1);
    expect((await post(PORT, 'events', 'x', { ...auth, 'idempotency-key': 'a b' })).status).toBe(400);
    // An NDJSON batch: its ids are consecutive, and a repeat answers the same list, byte for byte.
    const nd = { ...auth, 'content-type': 'application/x-ndjson', 'idempotency-key': 'batch-7' };
    const c = await post(PORT, 'events', '{"n":1}\n{"n":2}\n{"n":3}\n', nd);
    const d = await post(PORT, 'events', '{"n":1}\n{"n":2}\n{"n":3}\n', nd);
    expect(c.status).toBe(202);
    expect(c.json.ids).toHaveLength(3);
    const seqs = (c.json.ids as string[]).map((id) => Number(id.split(':').pop()));
    expect(seqs).toEqual([seqs[0], seqs[0] + 1, seqs[0] + 2]);
    expect(d.json).toEqual(c.json);
    expect(await depth(edge)).toBe(before + 4);
  });

  it('rate-limits a tenant with 429 and Retry-After', async () => {
    const codes: number[] = [];
    let retry: string | null = null;
    for (let i = 0; i < 6; i++) {
      const r = await post(PORT, 'events', 'x', { authorization: 'Bearer tok-slow' });
      codes.push(r.status);
      if (r.status === 429) retry = r.headers.get('retry-after');
    }
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
    expect(codes[0]).toBe(202);
    expect(retry).toBe('1');
  });

  it('a full quota answers 507 with Retry-After (reject); drop-oldest keeps accepting and counts drops', async () => {
    let r;
    for (let i = 0; i < 100; i++) {
      r = await post(PORT, 'events', 'z'.repeat(900), auth);
      if (r.status !== 202) break;
    }
    expect([r!.status, r!.json.error, r!.headers.get('retry-after')]).toEqual([507, 'spool_full', '5']);
    await admin(edge, '/v1/spool/purge?tenant=acme&topic=events', { method: 'POST' });
    for (let i = 0; i < 60; i++) expect((await post(PORT, 'ring', `r${i}`.padEnd(500, '.'), auth)).status).toBe(202);
    const ring = (await status(edge)).queues.find((q: { topic: string }) => q.topic === 'ring');
    expect(ring.dropped).toBeGreaterThan(0);
    expect(ring.depth + ring.dropped).toBe(60);
    const m = await (await admin(edge, '/metrics')).text();
    expect(m).toMatch(new RegExp(`edgectl_spool_dropped_total\\{tenant="acme",topic="ring"\\} ${ring.dropped}`));
    await admin(edge, '/v1/spool/purge?tenant=acme', { method: 'POST' });
  });

  it('expires messages past the topic TTL and counts them', async () => {
    expect((await post(PORT, 'short', 'soon gone', auth)).status).toBe(202);
    await waitFor(async () => (await status(edge)).queues.find((q: { topic: string }) => q.topic === 'short')?.expired === 1, 6000, 'ttl expiry');
    const q = (await status(edge)).queues.find((x: { topic: string }) => x.topic === 'short');
    expect(q.depth).toBe(0);
  });

  it('times out a stalled client (408) and closes the connection', async () => {
    const t0 = Date.now();
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect(PORT, '127.0.0.1', () => {
        s.write('POST /v1/q/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-acme\r\nContent-Length: 100\r\n\r\n0123456789');
      });
      let buf = '';
      s.on('data', (d) => { buf += d.toString(); });
      s.on('close', () => resolve(buf));
      s.on('error', () => resolve(buf));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 408/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('checks the hop credential and the batch format on /v1/forward', async () => {
    const batch = encodeBatch([{ id: 'e1:x:1', tenant: 'acme', topic: 'events', contentType: 'text/plain', ts: Date.now(), body: Buffer.from('hi') }]);
    const f = (headers: Record<string, string>, body: Buffer) => fetch(`http://127.0.0.1:${PORT}/v1/forward`, { method: 'POST', body, headers: { 'content-type': 'application/vnd.edgectl.batch', ...headers } });
    expect((await f({}, batch)).status).toBe(401);
    expect((await f({ authorization: 'Bearer wrong' }, batch)).status).toBe(403);
    const broken = Buffer.from(batch);
    broken.writeUInt32BE(9999, 0);
    expect((await f({ authorization: 'Bearer hop-secret' }, broken)).status).toBe(400);
    const evil = encodeBatch([{ id: 'e1:x:2', tenant: '../etc', topic: 'events', contentType: 'text/plain', ts: 1, body: Buffer.from('x') }]);
    expect((await f({ authorization: 'Bearer hop-secret' }, evil)).status).toBe(400);
    const ok = await f({ authorization: 'Bearer hop-secret' }, batch);
    expect(await ok.json()).toEqual({ accepted: 1, duplicates: 0 });
    expect(await (await f({ authorization: 'Bearer hop-secret' }, batch)).json()).toEqual({ accepted: 0, duplicates: 1 });
  });
});
