import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { type Chain, depth, kill9, killAll, restart, startChain, waitFor } from './helpers.js';
import { deleteStream, readStream } from './nats-read.js';
import { freePortRange } from '../helpers/ports.js';

// edge -> relay -> hub -> JetStream, each a real process; kill -9 at random, 20+ rounds.
const RUN = randomBytes(4).toString('hex');
const STREAM = `EDGECTL_CRASH_${RUN}`;
const PREFIX = `edgectltest_${RUN}`;
const TOPICS = ['t1', 't2', 't3'];
let dir: string;
const procs: Chain = {} as never;
// Free ports, found in beforeAll: each agent's device API (its admin API on the next port).
const P = { edge: 0, relay: 0, hub: 0 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-crash-'));
  for (const k of ['edge', 'relay', 'hub'] as const) P[k] = await freePortRange(2);
  const common = ['--heartbeat-seconds', '1', ...TOPICS.map((t) => `--topic=acme/${t}`)];
  Object.assign(procs, await startChain(dir, P, { hubSink: `nats://127.0.0.1:4222?stream=${STREAM}&prefix=${PREFIX}&duplicateWindow=900`, common }));
}, 300_000);

afterAll(async () => {
  await killAll();
  await deleteStream(STREAM);
  await rm(dir, { recursive: true, force: true });
});

describe('crash: kill -9 at random under load', () => {
  it('delivers every acknowledged message to JetStream exactly once, in per-topic order', async () => {
    const acked: { id: string; topic: string }[] = [];
    let stop = false;
    let sent = 0;
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const topic = TOPICS[(w + n) % TOPICS.length];
        const batch = n % 5 === 0;
        const body = batch ? `{"w":${w},"n":${n},"i":0}\n{"w":${w},"n":${n},"i":1}\n` : `w${w}-${n}`;
        sent++;
        try {
          const r = await fetch(`http://127.0.0.1:${P.edge}/v1/q/${topic}`, { method: 'POST', body, headers: { authorization: 'Bearer tok', ...(batch ? { 'content-type': 'application/x-ndjson' } : {}) } });
          const j = (await r.json()) as { id?: string; ids?: string[] };
          if (r.status === 202) for (const id of j.ids ?? [j.id!]) acked.push({ id, topic });
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    const victims: string[] = [];
    for (let round = 0; round < 21; round++) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 500));
      const name = (['edge', 'relay', 'hub'] as const)[Math.floor(Math.random() * 3)];
      victims.push(name);
      await kill9(procs[name]);
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      procs[name] = await restart(procs[name]);
    }
    stop = true;
    await load;
    expect(new Set(victims).size).toBe(3);
    expect(acked.length).toBeGreaterThan(500);
    for (const p of [procs.edge, procs.relay, procs.hub]) await waitFor(async () => (await depth(p)) === 0, 60_000, `${p.name} to drain`, 250);
    // The hub's last batch must have its JetStream acks; give the sink a moment after the spool empties.
    await new Promise((r) => setTimeout(r, 500));

    const msgs = (await readStream(STREAM)).filter((m) => !m.subject.includes('._agent.'));
    const ids = msgs.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length); // exactly once
    const inStream = new Set(ids);
    const lost = acked.filter((a) => !inStream.has(a.id));
    expect(lost).toEqual([]);
    // Per-topic order: ids are node:epoch:seq and seq grows in spool order.
    for (const t of TOPICS) {
      const seqs = msgs.filter((m) => m.subject === `${PREFIX}.acme.${t}`).map((m) => Number(m.id.split(':')[2]));
      expect(seqs.length).toBeGreaterThan(0);
      for (let i = 1; i < seqs.length; i++) if (seqs[i] <= seqs[i - 1]) expect.fail(`topic ${t}: ${seqs[i]} after ${seqs[i - 1]}`);
    }
    // Every message in the stream came from the edge (no strays), and nothing was acked twice.
    expect(new Set(acked.map((a) => a.id)).size).toBe(acked.length);
    expect(msgs.length).toBeGreaterThanOrEqual(acked.length);
    console.log(`crash test: ${victims.length} kills (${victims.join(',')}), ${sent} requests, ${acked.length} acked messages, ${msgs.length} in JetStream`);
  }, 240_000);
});
