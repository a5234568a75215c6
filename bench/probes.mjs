// Probes the HTTPQ benches share (httpq.mjs, intake-ab.mjs): the filesystem's sync rate and
// JetStream's acked publish rate, each measured the same way in both.
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** 512-byte writes each followed by fdatasync, for `ms`, in a new file under `where`: syncs per second. */
export function fsyncRate(where, ms = 2000) {
  const f = path.join(where, 'fsync-probe');
  const fd = openSync(f, 'w');
  const b = Buffer.alloc(512, 1);
  let n = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < ms) { writeSync(fd, b); fdatasyncSync(fd); n++; }
  closeSync(fd);
  unlinkSync(f);
  return n / ((Date.now() - t0) / 1000);
}

/** `n` acked publishes of `size` bytes with `inflight` outstanding, to a new file-storage stream (deleted after): messages per second. */
export async function jetstreamRate(n, inflight, size) {
  const { connect, StorageType } = await import('nats');
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const jsm = await nc.jetstreamManager();
  const stream = `EDGECTL_BENCH_JS_${randomBytes(3).toString('hex')}`;
  await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`], storage: StorageType.File });
  const js = nc.jetstream();
  const body = Buffer.alloc(size, 120);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < n) { const i = next++; await js.publish(`${stream.toLowerCase()}.x`, body, { msgID: `m${i}` }); }
  }));
  const rate = n / ((performance.now() - t0) / 1000);
  await jsm.streams.delete(stream);
  await nc.close();
  return rate;
}
