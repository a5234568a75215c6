import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, credential, depth, killAll, post, rssMb, sha, startAgent, status, waitFor } from './helpers.js';
import { encodeBatch, FORWARD_CONTENT_TYPE } from '../../src/lib/agent/forward/wire.js';
import { MAX_FORWARD_BODY_BYTES } from '../../src/lib/limits.js';
import type { IncomingItem } from '../../src/lib/agent/store/spool.js';
import { freePortRange } from '../helpers/ports.js';

/**
 * Who may POST /v1/forward, and what it may send. Real processes: edge-a (a real edge agent) →
 * relay-r → hub-h (file sink). The test itself plays strangers: nobody, a wrong credential, and
 * the credential of edge-b (a real node of the fleet, accepted at relay-r for its own messages).
 */
// Free ports, found in beforeAll: each agent's device API (its admin API on the next port).
let R: number;
let H: number;
let A: number;
let LONE: number;
let LATE: number;
let dir: string;
let relay: AgentProc;
let hub: AgentProc;
let edge: AgentProc;
let creds: Record<'a' | 'b' | 'r' | 'late', ReturnType<typeof credential>>;

const msg = (id: string, body: string, tenant = 'acme', topic = 'events'): IncomingItem => ({ id, tenant, topic, contentType: 'text/plain', ts: Date.now(), body: Buffer.from(body) });
const forward = async (port: number, items: IncomingItem[], secret?: string): Promise<{ status: number; json: any }> => {
  const r = await fetch(`http://127.0.0.1:${port}/v1/forward`, { method: 'POST', body: encodeBatch(items), headers: { 'content-type': FORWARD_CONTENT_TYPE, ...(secret ? { authorization: `Bearer ${secret}` } : {}) } });
  return { status: r.status, json: await r.json() };
};
const sinkLines = async () => (await readFile(path.join(dir, 'sink.jsonl'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; body: string; tenant: string });

/** Sends a request's headers and the first bytes of its body, then keeps the connection open. */
function hold(port: number, headers: string[], length: number, first = 65536): Promise<{ socket: net.Socket; reply: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write([`POST /v1/forward HTTP/1.1`, 'Host: relay', `Content-Type: ${FORWARD_CONTENT_TYPE}`, `Content-Length: ${length}`, ...headers, '', ''].join('\r\n'));
      socket.write(Buffer.alloc(Math.min(first, length), 120));
      resolve({ socket, reply });
    });
    let buf = '';
    const reply = new Promise<string>((done) => {
      socket.on('data', (d) => { buf += d.toString('latin1'); });
      socket.on('close', () => done(buf));
    });
    socket.on('error', () => { /* reset after a refusal: what was read is the answer */ });
    socket.once('error', reject);
  });
}

/** A POST /v1/forward as Node's HTTP client sends one: head and the whole body handed to the socket at once. */
function sendWhole(port: number, headers: Record<string, string>, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/forward', agent: false,
      headers: { 'content-type': FORWARD_CONTENT_TYPE, 'content-length': body.length, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', () => resolve(String(res.statusCode)));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end(body);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-fwdauth-'));
  [R, H, A, LONE, LATE] = [await freePortRange(2), await freePortRange(2), await freePortRange(2), await freePortRange(2), await freePortRange(2)];
  creds = { a: credential(dir, 'edge-a'), b: credential(dir, 'edge-b'), r: credential(dir, 'relay-r'), late: credential(dir, 'edge-late') };
  const tenants = ['--topic', 'acme/events', '--heartbeat-seconds', '0'];
  hub = await startAgent('hub-h', H, H + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${path.join(dir, 'sink.jsonl')}`,
    '--accept-forward', creds.r.accept('edge-a', 'edge-b', 'edge-late'), ...tenants]);
  relay = await startAgent('relay-r', R, R + 1, ['--role', 'relay', '--data', path.join(dir, 'relay'), '--upstream', `http://127.0.0.1:${H}/v1/forward`,
    '--credential-file', creds.r.file, '--accept-forward', creds.a.accept(), '--accept-forward', creds.b.accept(), '--accept-forward', creds.late.accept(),
    '--forward-inflight-bytes', String(20 << 20), ...tenants]);
  edge = await startAgent('edge-a', A, A + 1, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${R}/v1/forward`,
    '--credential-file', creds.a.file, '--token', `acme:${sha('tok')}`, ...tenants]);
}, 300_000);

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /v1/forward: authenticated before the body is read', { timeout: 120_000 }, () => {
  it('an agent with no accepted senders accepts nobody (an empty list is not "anyone")', async () => {
    const lone = await startAgent('relay-lone', LONE, LONE + 1, ['--role', 'relay', '--data', path.join(dir, 'lone'), '--upstream', `http://127.0.0.1:${H}/v1/forward`, '--topic', 'acme/events', '--heartbeat-seconds', '0']);
    expect((await forward(LONE, [msg('edge-a:e:1', 'x')])).status).toBe(401);
    expect((await forward(LONE, [msg('edge-a:e:1', 'x')], creds.a.secret)).status).toBe(403);
    expect(await depth(lone)).toBe(0);
  });

  it('no credential is 401, a wrong one or one this hop does not list is 403: answered from the headers, the body never read', async () => {
    expect((await forward(R, [msg('edge-a:e:1', 'x')])).json.error).toBe('unauthorized');
    expect((await forward(R, [msg('edge-a:e:1', 'x')], 'guess')).json.error).toBe('forbidden');
    // relay-r's own credential is good at the hub, not here; edge-a's is good here, not at the hub.
    expect((await forward(R, [msg('relay-r:e:1', 'x')], creds.r.secret)).status).toBe(403);
    expect((await forward(H, [msg('edge-a:e:1', 'x')], creds.a.secret)).status).toBe(403);
    for (const auth of [[], ['Authorization: Bearer guess']]) {
      // 16 MiB declared, 64 KiB sent: the answer comes at once, and the agent hangs up without
      // waiting for the rest.
      const t0 = Date.now();
      const { socket, reply } = await hold(R, auth, 16 << 20);
      const text = await reply;
      expect(text).toMatch(auth.length ? /^HTTP\/1\.1 403 / : /^HTTP\/1\.1 401 /);
      expect(text).toMatch(/\r\nconnection: close\r\n/i);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(socket.destroyed || socket.readableEnded).toBe(true);
    }
    expect(await depth(relay)).toBe(0);
  });

  it('refused forwards whose clients send their whole bodies at once: the agent stops reading at the answer, its memory barely moves', async () => {
    // The device port's front hands /v1/forward to Node's HTTP server; a refusal there must
    // still stop the socket (it once read every body to the end: 40 x 16 MiB took 70 -> 576 MB).
    const body = Buffer.alloc(16 << 20, 120);
    for (const headers of [{}, { authorization: 'Bearer guess' }] as Record<string, string>[]) {
      const before = rssMb(relay.proc.pid!);
      const answers = await Promise.all(Array.from({ length: 20 }, () => sendWhole(R, headers, body)));
      expect(new Set(answers)).toEqual(new Set([Object.keys(headers).length ? '403' : '401']));
      await new Promise((r) => setTimeout(r, 1000));
      const grown = rssMb(relay.proc.pid!) - before;
      console.log(`refused forwards: relay RSS +${grown.toFixed(1)} MB after 20 x 16 MiB sent at once`);
      expect(grown).toBeLessThan(50); // every body read would be up to +320 MB (+166 seen)
    }
    expect(await depth(relay)).toBe(0);
  });

  it('ids are the sender\'s own (or of nodes behind it): another node\'s credential cannot pre-empt edge-a\'s next ids', async () => {
    const first = await post(A, 'events', 'real-1', { authorization: 'Bearer tok' });
    expect(first.status).toBe(202);
    const prefix = (first.json.id as string).replace(/\d+$/, '');
    const next = (i: number) => `${prefix}${Number(first.json.id.slice(prefix.length)) + i}`;
    // edge-b holds a valid credential and forges edge-a's next ids, as single messages and as a run.
    const forged = [1, 2, 3].map((i) => msg(next(i), `forged-${i}`));
    const byB = await forward(R, forged, creds.b.secret);
    expect([byB.status, byB.json.error]).toEqual([403, 'origin_not_allowed']);
    const run = { idPrefix: prefix, first: Number(first.json.id.slice(prefix.length)) + 1, count: 1, tenant: 'acme', topic: 'events', contentType: 'text/plain', ts: 1, bodies: Buffer.from([0, 0, 0, 1, 66]) };
    expect((await forward(R, [run], creds.b.secret)).json.error).toBe('origin_not_allowed');
    // Its own ids it may send; the hub gets them from relay-r, which may pass edge-b's on.
    expect((await forward(R, [msg('edge-b:e:1', 'from-b')], creds.b.secret)).json).toEqual({ accepted: 1, duplicates: 0 });
    for (const i of [1, 2, 3]) expect((await post(A, 'events', `real-${i + 1}`, { authorization: 'Bearer tok' })).json.id).toBe(next(i));
    await waitFor(async () => (await sinkLines()).filter((l) => l.body.startsWith('real-')).length === 4, 30_000, 'edge-a\'s messages at the hub');
    const lines = await sinkLines();
    expect(lines.filter((l) => l.body.startsWith('real-')).map((l) => [l.id, l.body])).toEqual([0, 1, 2, 3].map((i) => [i === 0 ? first.json.id : next(i), `real-${i + 1}`]));
    expect(lines.filter((l) => l.body.startsWith('forged-'))).toEqual([]);
    expect(await depth(edge)).toBe(0);
    // Not one of them was taken for a repeat on the way.
    for (const hop of [relay, hub]) expect((await status(hop)).intake.duplicatesDropped).toBe(0);
    await waitFor(async () => (await sinkLines()).some((l) => l.body === 'from-b'), 30_000, 'edge-b\'s own message at the hub');
  });

  it('refuses messages for tenants or topics this hop does not declare, and internal topics other than heartbeats: nothing stored', async () => {
    const before = await depth(relay);
    for (const [tenant, topic, error] of [['ghost', 'events', 'unknown_tenant'], ['acme', 'orders', 'topic_not_allowed'], ['_agent', 'anything', 'topic_not_allowed']]) {
      const r = await forward(R, [msg('edge-a:e:900', 'ok'), msg('edge-a:e:901', 'x', tenant, topic)], creds.a.secret);
      expect([tenant, r.status, r.json.error]).toEqual([tenant, 403, error]);
    }
    expect(await depth(relay)).toBe(before);
    expect((await forward(R, [msg('edge-a:e:902', '{}', '_agent', 'heartbeat')], creds.a.secret)).status).toBe(200);
  });

  it('a node without its credential yet runs and spools; its next hop refuses it until the credential is there', async () => {
    await unlink(creds.late.file);
    const late = await startAgent('edge-late', LATE, LATE + 1, ['--role', 'edge', '--data', path.join(dir, 'late'), '--upstream', `http://127.0.0.1:${R}/v1/forward`,
      '--credential-file', creds.late.file, '--token', `acme:${sha('tok')}`, '--topic', 'acme/events', '--heartbeat-seconds', '0']);
    expect((await post(LATE, 'events', 'late-1', { authorization: 'Bearer tok' })).status).toBe(202);
    await waitFor(async () => (await status(late)).forward.errors >= 2, 20_000, 'refused forwards');
    expect((await status(late)).forward.lastError.message).toMatch(/answered 401/);
    expect(await depth(late)).toBe(1);
    await writeFile(creds.late.file, creds.late.secret, { mode: 0o600 });
    await waitFor(async () => (await depth(late)) === 0, 60_000, 'delivery once the credential is there');
    await waitFor(async () => (await sinkLines()).some((l) => l.body === 'late-1'), 30_000, 'edge-late\'s message at the hub');
  });

  it('holds at most --forward-inflight-bytes of bodies: past it 503 with Retry-After before reading; a larger body goes alone; chunked is 411', async () => {
    const auth = [`Authorization: Bearer ${creds.a.secret}`];
    const held = [await hold(R, auth, 8 << 20), await hold(R, auth, 8 << 20)];
    await new Promise((r) => setTimeout(r, 200));
    for (const size of [8 << 20, 24 << 20]) {
      const text = await (await hold(R, auth, size)).reply;
      expect(text).toMatch(/^HTTP\/1\.1 503 /);
      expect(text).toMatch(/retry-after: 1/i);
    }
    // Past what any hop takes (the largest message plus its batch's header): 413, whatever is in flight.
    expect(await (await hold(R, auth, MAX_FORWARD_BODY_BYTES + 1)).reply).toMatch(/^HTTP\/1\.1 413 /);
    const chunked = await new Promise<string>((resolve) => {
      const s = net.connect(R, '127.0.0.1', () => s.write(`POST /v1/forward HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer ${creds.a.secret}\r\nContent-Type: ${FORWARD_CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`));
      let b = '';
      s.on('data', (d) => { b += d.toString(); });
      s.on('close', () => resolve(b));
      s.on('error', () => resolve(b));
    });
    expect(chunked).toMatch(/^HTTP\/1\.1 411 /);
    // Their senders go away: the budget is free again, and a batch larger than all of it is taken alone.
    for (const h of held) h.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const big = await forward(R, [msg('edge-a:e:1000', 'y'.repeat(24 << 20))], creds.a.secret);
    expect(big).toEqual({ status: 200, json: { accepted: 1, duplicates: 0 } });
  });
});
