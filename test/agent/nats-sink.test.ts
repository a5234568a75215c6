import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { connect, DiscardPolicy, StorageType } from 'nats';
import os from 'node:os';
import path from 'node:path';
import { depth, killAll, sha, startAgent, status, stopAgent, waitFor } from './helpers.js';
import { deleteStream, readStream } from './nats-read.js';
import { freePort, freePortRange } from '../helpers/ports.js';
import { encodeBatch } from '../../src/lib/agent/forward/wire.js';

// JetStream's Nats-Msg-Id dedupe lasts only its duplicate window (1 s here). A batch retried after
// the window (a hub that crashed between the JetStream ack and its delete, and stayed down) must
// still not be published twice: the hub checks the subject's last message first.
const RUN = randomBytes(4).toString('hex');
const STREAM = `EDGECTL_SINK_${RUN}`;
const PREFIX = `edgectlsink_${RUN}`;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-natssink-'));
});
afterAll(async () => {
  await killAll();
  await deleteStream(STREAM);
  await rm(dir, { recursive: true, force: true });
});

/** A hub's flags: its data directory under the test's, the sink, one accepted sender (e9, token "hop"). */
const hubArgs = (data: string, sink: string) => ['--role', 'hub', '--data', path.join(dir, data), '--sink', sink, '--accept-forward', `e9:${sha('hop')}`, '--topic', 'acme/ev', '--heartbeat-seconds', '0'];
/** POST /v1/forward as e9. */
const forwardTo = (port: number, body: Buffer) => fetch(`http://127.0.0.1:${port}/v1/forward`, { method: 'POST', body, headers: { 'content-type': 'application/vnd.edgectl.batch', authorization: 'Bearer hop' } });
/** One batch of acme/ev messages, each with its id as its body. */
const batchOf = (ids: string[]) => encodeBatch(ids.map((id) => ({ id, tenant: 'acme', topic: 'ev', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(id) })));

describe('nats sink', { timeout: 240_000 }, () => {
  it('publishes subject <prefix>.<tenant>.<topic> with Nats-Msg-Id, and never twice even past the duplicate window', async () => {
    const sink = `nats://127.0.0.1:4222?stream=${STREAM}&prefix=${PREFIX}&duplicateWindow=1`;
    const msgs = Array.from({ length: 5 }, (_, i) => ({ id: `e9:${RUN}:${i + 1}`, tenant: 'acme', topic: 'ev', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(`m${i}`) }));
    const forward = (port: number, n: number) => forwardTo(port, encodeBatch(msgs.slice(0, n)));
    const args = (d: string) => hubArgs(d, sink);
    // Free ports for the two hubs (each admin API on the next port).
    const [pa, pb] = [await freePortRange(2), await freePortRange(2)];
    const a = await startAgent('hub-n1', pa, pa + 1, args('a'));
    expect((await forward(pa, 3)).status).toBe(200);
    await waitFor(async () => (await depth(a)) === 0, 20_000, 'first delivery');
    await stopAgent(a);
    await new Promise((r) => setTimeout(r, 2500)); // past the duplicate window
    // A second hub with an empty dedupe window gets the same three again, plus two new ones.
    const b = await startAgent('hub-n2', pb, pb + 1, args('b'));
    expect(await (await forward(pb, 5)).json()).toEqual({ accepted: 5, duplicates: 0 });
    await waitFor(async () => (await depth(b)) === 0, 20_000, 'second delivery');
    const got = await readStream(STREAM);
    expect(got.map((m) => [m.subject, m.id, m.body])).toEqual(msgs.map((m, i) => [`${PREFIX}.acme.ev`, m.id, `m${i}`]));
    expect(b.log.join('')).toMatch(/skipping messages already in JetStream/);
  });

  it('recreates a stream deleted under a running hub and delivers into it, saying why it waited', async () => {
    const stream = `${STREAM}_GONE`;
    const prefix = `${PREFIX}_gone`;
    const one = (id: string) => batchOf([id]);
    const port = await freePortRange(2);
    const send = (body: Buffer) => forwardTo(port, body);
    const hub = await startAgent('hub-n3', port, port + 1, hubArgs('c', `nats://127.0.0.1:4222?stream=${stream}&prefix=${prefix}`));
    try {
      expect((await send(one(`e9:${RUN}:g1`))).status).toBe(200);
      await waitFor(async () => (await depth(hub)) === 0, 20_000, 'first delivery');
      await deleteStream(stream);
      expect((await send(one(`e9:${RUN}:g2`))).status).toBe(200);
      await waitFor(async () => (await depth(hub)) === 0, 30_000, 'delivery after the stream was deleted');
      expect((await readStream(stream)).map((m) => m.id)).toEqual([`e9:${RUN}:g2`]);
      expect(hub.log.join('')).toMatch(/no stream takes subjects .*503 no responders/);
    } finally {
      await deleteStream(stream);
    }
  });

  it('a JetStream ack that is an error (stream full, discard new) fails the batch: nothing is deleted, and it goes in whole once there is room', async () => {
    const stream = `${STREAM}_FULL`;
    const prefix = `${PREFIX}_full`;
    const nc = await connect({ servers: '127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], storage: StorageType.File, max_msgs: 2, discard: DiscardPolicy.New });
    const port = await freePortRange(2);
    const hub = await startAgent('hub-n5', port, port + 1, hubArgs('e', `nats://127.0.0.1:4222?stream=${stream}&prefix=${prefix}`));
    try {
      const ids = [1, 2, 3].map((i) => `e9:${RUN}:full${i}`);
      expect((await forwardTo(port, batchOf(ids))).status).toBe(200);
      await waitFor(async () => (await status(hub)).forward.errors >= 2, 30_000, 'failed deliveries into the full stream');
      const full = await status(hub);
      expect(full.totals.depth).toBe(3);
      expect(full.forward.lastError.message).toMatch(/JetStream publish failed: maximum messages exceeded/);
      await jsm.streams.update(stream, { max_msgs: 10 });
      await waitFor(async () => (await depth(hub)) === 0, 60_000, 'delivery once the stream has room');
      // The two that went in before are not there twice (Nats-Msg-Id, or the last-message check).
      expect((await readStream(stream)).map((m) => m.id)).toEqual(ids);
    } finally {
      await nc.close();
      await deleteStream(stream);
    }
  });

  it('keeps everything while JetStream is unreachable, says so in /status, and delivers once it is back', async () => {
    // A NATS server of this test's own, on its own free port, started only after the hub has tried.
    const port = await freePort();
    const hubPort = await freePortRange(2);
    const stream = `${STREAM}_LATE`;
    const hub = await startAgent('hub-n4', hubPort, hubPort + 1, hubArgs('d', `nats://127.0.0.1:${port}?stream=${stream}&prefix=${PREFIX}_late`));
    const ids = [1, 2, 3].map((i) => `e9:${RUN}:late${i}`);
    expect((await forwardTo(hubPort, batchOf(ids))).status).toBe(200);
    await waitFor(async () => (await status(hub)).forward.errors >= 2, 20_000, 'failed deliveries while NATS is down');
    const down = await status(hub);
    expect(down.totals.depth).toBe(3);
    expect(down.forward.lastError.message).toMatch(/NATS/);
    const store = await mkdtemp(path.join(os.tmpdir(), 'edgectl-nats-late-'));
    const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
    try {
      await waitFor(async () => (await depth(hub)) === 0, 60_000, 'delivery once NATS is up');
      const nc = await connect({ servers: `127.0.0.1:${port}` });
      try {
        const c = await nc.jetstream().consumers.get(stream);
        const got: string[] = [];
        for await (const m of await c.fetch({ max_messages: 10, expires: 2000 })) got.push(m.headers?.get('Nats-Msg-Id') ?? '');
        expect(got).toEqual(ids);
      } finally {
        await nc.close();
      }
    } finally {
      nats.kill('SIGKILL');
      await new Promise((r) => nats.once('exit', r));
      await rm(store, { recursive: true, force: true });
    }
  });
});
