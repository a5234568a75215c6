import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Spool } from '../../src/lib/agent/store/spool.js';
import { silentLogger as log } from '../../src/lib/logger.js';
import { encodeBatch, FORWARD_CONTENT_TYPE } from '../../src/lib/agent/forward/wire.js';
import { freePorts } from '../helpers/ports.js';
import { type AgentProc, credential, kill9, killAll, restart, sha, startAgent } from './helpers.js';

// Pipelined group commit (issue 18): several batches in flight, answered in order, and a SIGKILL
// at any moment leaves a prefix of what was written, holding everything acknowledged.

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-pipeline-'));
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

/** Every record left in a store, in seq order: its first seq, its message count and its messages. */
async function readAll(dataDir: string): Promise<{ seq: number; count: number; ids: string[]; bodies: string[] }[]> {
  const s = new Spool({ dataDir, log, node: 'reader' });
  await s.open();
  try {
    const b = await s.readBatch(10_000_000, 1 << 30);
    const msgs = b.messages();
    let k = 0;
    return b.records.map((r) => {
      const part = msgs.slice(k, k + r.count);
      k += r.count;
      return { seq: r.seq, count: r.count, ids: part.map((m) => m.id), bodies: part.map((m) => m.body.toString()) };
    }).sort((a, b) => a.seq - b.seq);
  } finally {
    await s.close();
  }
}

describe('pipelined group commit', () => {
  it('keeps more than one batch in flight under concurrent load and answers every caller in seq order', async () => {
    const s = new Spool({ dataDir: path.join(dir, 'store'), log, node: 'n1' });
    await s.open();
    const answered: number[] = [];
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        const [id] = await s.append('acme', 'p', [{ contentType: 'text/plain', body: Buffer.from(`w${w}-${i}`) }]);
        answered.push(Number(id.split(':')[2]));
      }
    }));
    const st = s.commitStats;
    // Batches written while earlier ones were being synced; many answers per sync.
    expect(st.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(st.syncs).toBeLessThan((64 * 40) / 4);
    // In order: a caller is answered only once every earlier batch is synced, so answers come in seq order.
    expect(answered).toEqual([...answered].sort((a, b) => a - b));
    await s.close();
    // The counters on disk are the last batch's (an earlier snapshot landing last would hand out seqs again).
    const again = new Spool({ dataDir: path.join(dir, 'store'), log, node: 'n1' });
    await again.open();
    const [next] = await again.append('acme', 'p', [{ contentType: 'text/plain', body: Buffer.from('after reopen') }]);
    expect(Number(next.split(':')[2])).toBe(64 * 40 + 1);
    await again.close();
    const all = await readAll(path.join(dir, 'store'));
    expect(all.map((r) => r.seq)).toEqual(Array.from({ length: 64 * 40 + 1 }, (_, i) => i + 1));
  });

  it('after SIGKILL with batches in flight, what survives is exactly a prefix of what was written and holds every acknowledged message, per sender', async () => {
    const [port, adminPort, deadUpstream] = await freePorts(3);
    const data = path.join(dir, 'relay');
    const senders = ['fa', 'fb', 'fc'].map((n) => credential(dir, n));
    const devices = ['d1', 'd2', 'd3'];
    const args = ['--role', 'relay', '--data', data, '--upstream', `http://127.0.0.1:${deadUpstream}/v1/forward`, '--heartbeat-seconds', '0',
      ...devices.flatMap((d) => ['--token', `acme:${sha(`tok-${d}`)}`]), ...senders.flatMap((c) => ['--accept-forward', c.accept()]),
      '--credential-file', credential(dir, 'relay-p').file, '--topic', 'acme/dev', '--topic', 'acme/fwd'];
    let agent: AgentProc = await startAgent('relay-p', port, adminPort, args);
    // What each sender sent, and what it was told was stored: device ids come back in the 202, forwarded ids are the sender's own.
    const sent = new Map<string, Set<string>>();
    const acked = new Map<string, Set<string>>();
    const note = (m: Map<string, Set<string>>, who: string, v: string) => { let s = m.get(who); if (!s) m.set(who, s = new Set()); s.add(v); };
    const deviceIdOfBody = new Map<string, string>();
    let killed = false;
    let fwdSeq = 0;
    const device = async (d: string, conn: number) => {
      for (let i = 0; !killed; i++) {
        const body = `${d}.${conn}.${i}`;
        note(sent, d, body);
        try {
          const r = await fetch(`http://127.0.0.1:${port}/v1/q/dev`, { method: 'POST', body, headers: { authorization: `Bearer tok-${d}` } });
          const j = (await r.json()) as { id: string };
          if (r.status === 202) { note(acked, d, body); deviceIdOfBody.set(body, j.id); }
        } catch { return; }
      }
    };
    const forwarder = async (c: (typeof senders)[number], node: string, conn: number) => {
      for (; !killed;) {
        const items = Array.from({ length: 3 }, () => ({ id: `${node}:e1:${++fwdSeq}`, tenant: 'acme', topic: 'fwd', contentType: 'text/plain', ts: Date.now(), body: Buffer.from(`${node}.${conn}`) }));
        for (const m of items) note(sent, node, m.id);
        try {
          const r = await fetch(`http://127.0.0.1:${port}/v1/forward`, { method: 'POST', body: encodeBatch(items), headers: { 'content-type': FORWARD_CONTENT_TYPE, authorization: `Bearer ${c.secret}` } });
          await r.arrayBuffer();
          if (r.status === 200) for (const m of items) note(acked, node, m.id);
        } catch { return; }
      }
    };
    for (let round = 0; round < 3; round++) {
      killed = false;
      const load = Promise.all([
        ...devices.flatMap((d) => Array.from({ length: 6 }, (_, k) => device(d, round * 100 + k))),
        ...senders.flatMap((c, i) => Array.from({ length: 4 }, (_, k) => forwarder(c, ['fa', 'fb', 'fc'][i], round * 100 + k))),
      ]);
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 600));
      const st = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { ok: boolean };
      expect(st.ok).toBe(true);
      killed = true;
      await kill9(agent);
      await load;
      const all = await readAll(data);
      // A prefix of the write order: seqs are handed out in the order batches are written, so the
      // records that survive cover 1..n with no gap (a later batch never without an earlier one).
      let next = 1;
      for (const r of all) {
        expect(r.seq, `record at seq ${r.seq} after a gap (expected ${next})`).toBe(next);
        next = r.seq + r.count;
      }
      const seen = new Map<string, number>();
      for (const r of all) for (let i = 0; i < r.count; i++) {
        const key = r.ids[i].startsWith('relay-p:') ? r.bodies[i] : r.ids[i];
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      for (const who of [...devices, 'fa', 'fb', 'fc']) {
        const a = [...(acked.get(who) ?? [])];
        expect(a.length, `${who} had messages acknowledged in round ${round}`).toBeGreaterThan(0);
        // Every acknowledged message survived, exactly once; nothing survived that was never sent.
        expect(a.filter((x) => seen.get(x) !== 1), `${who}: acknowledged but not stored exactly once`).toEqual([]);
      }
      for (const [key] of seen) expect([...sent.values()].some((s) => s.has(key)), `${key} was never sent`).toBe(true);
      for (const [body, id] of deviceIdOfBody) expect(all.some((r) => r.ids.includes(id) && r.bodies[r.ids.indexOf(id)] === body)).toBe(true);
      agent = await restart(agent);
    }
  }, 240_000);
});
