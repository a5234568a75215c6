import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePortRange } from '../helpers/ports.js';
import { type Chain, depth, kill9, killAll, restart, startChain, waitFor } from './helpers.js';
import { createTestDb, type TestDb } from './pg-db.js';

// edge -> relay -> hub -> PostgreSQL, each a real process, kill -9 at random under load (the
// crash test the JetStream sink passes, test/agent/crash.test.ts), plus hub kills aimed at its
// COMMITs: a batch whose COMMIT landed but whose spool delete did not comes again, and must change
// nothing. A deferred trigger makes each COMMIT take ~0.05 s (a loaded database), so that the
// aimed kills find one running: the server finishes it, the killed hub never learns.

const TOPICS = ['t1', 't2', 't3'];
let dir: string;
let db: TestDb;
const procs: Chain = {} as never;
const P = { edge: 0, relay: 0, hub: 0 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-pgcrash-'));
  db = await createTestDb('edgectl_pgsink_crash');
  for (const k of ['edge', 'relay', 'hub'] as const) P[k] = await freePortRange(2);
  const common = ['--heartbeat-seconds', '1', '--forward-batch-messages', '50', ...TOPICS.map((t) => `--topic=acme/${t}`)];
  Object.assign(procs, await startChain(dir, P, { hubSink: db.url(), common, afterHub: async () => {
    await db.sql.unsafe(`create function edgectl_test_slow_commit() returns trigger language plpgsql as $$ begin perform pg_sleep(0.001); return null; end $$;
      create constraint trigger edgectl_test_slow_commit after insert on edgectl_messages deferrable initially deferred for each row execute function edgectl_test_slow_commit();`).simple();
  } }));
}, 300_000);

afterAll(async () => {
  await killAll();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('postgres sink under crashes', () => {
  it('stores every acknowledged message exactly once, in per-topic order, while edge, relay and hub are killed at random', async () => {
    const acked: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const topic = TOPICS[(w + n) % TOPICS.length];
        const batch = n % 5 === 0;
        const body = batch ? `{"w":${w},"n":${n},"i":0}\n{"w":${w},"n":${n},"i":1}\n` : `w${w}-${n}`;
        try {
          const r = await fetch(`http://127.0.0.1:${P.edge}/v1/q/${topic}`, { method: 'POST', body, headers: { authorization: 'Bearer tok', ...(batch ? { 'content-type': 'application/x-ndjson' } : {}) } });
          const j = (await r.json()) as { id?: string; ids?: string[] };
          if (r.status === 202) acked.push(...(j.ids ?? [j.id!]));
        } catch {
          await new Promise((r) => setTimeout(r, 20)); // the edge is being restarted
        }
      }
    };
    const load = Promise.all(Array.from({ length: 3 }, (_, w) => worker(w)));
    const inCommit = async () => (await db.sql`select count(*)::int as n from pg_stat_activity
      where datname = ${db.name} and application_name = 'edgectl-hub' and state = 'active' and query ilike 'commit%'`)[0].n > 0;
    const victims: string[] = [];
    let found = 0;
    const logs: string[] = [];
    for (let round = 0; round < 21; round++) {
      // Every other kill waits for a COMMIT of the hub; the others hit any of the three at any time.
      const aimed = round % 2 === 1;
      const name = aimed ? 'hub' : (['edge', 'relay', 'hub'] as const)[Math.floor(Math.random() * 3)];
      if (aimed) found += await waitFor(inCommit, 10_000, 'a COMMIT of the hub', 5).then(() => 1, () => 0);
      else await new Promise((r) => setTimeout(r, 150 + Math.random() * 500));
      victims.push(name);
      await kill9(procs[name]);
      if (name === 'hub') logs.push(procs.hub.log.join(''));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      procs[name] = await restart(procs[name]);
    }
    stop = true;
    await load;
    for (const p of [procs.edge, procs.relay, procs.hub]) await waitFor(async () => (await depth(p)) === 0, 120_000, `${p.name} to drain`, 250);
    logs.push(procs.hub.log.join(''));

    const rows = await db.sql<{ id: string; topic: string }[]>`select id, topic from edgectl_messages where tenant = 'acme' order by seq`;
    expect(acked.length).toBeGreaterThan(500);
    expect(new Set(acked).size).toBe(acked.length);
    const stored = new Set(rows.map((r) => r.id));
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    // More rows than acknowledgements only where the edge died between its sync and its answer:
    // those are the edge's own messages too, once each (the key is the id).
    expect(rows.length).toBeGreaterThanOrEqual(acked.length);
    expect(rows.filter((r) => !r.id.startsWith('edge-c:'))).toEqual([]);
    // Per topic, the hub's store order is the edge's: ids (node:epoch:seq, one edge) only grow.
    for (const t of TOPICS) {
      const seqs = rows.filter((r) => r.topic === t).map((r) => Number(r.id.split(':')[2]));
      expect(seqs.length).toBeGreaterThan(0);
      for (let i = 1; i < seqs.length; i++) if (seqs[i] <= seqs[i - 1]) expect.fail(`topic ${t}: ${seqs[i]} after ${seqs[i - 1]}`);
    }
    // Heartbeats of all three went through the same crashes; each latest row is its node's newest beat.
    const beats = await db.sql`select l.node, l.time = (select max(h.time) from edgectl_heartbeats h where h.node = l.node) as newest from edgectl_heartbeats_latest l order by l.node`;
    expect(beats.map((b) => [b.node, b.newest])).toEqual([['edge-c', true], ['hub-c', true], ['relay-c', true]]);
    const replays = logs.join('').match(/messages already in PostgreSQL were skipped/g)?.length ?? 0;
    console.log(`postgres crash test: ${victims.length} kills (${victims.join(',')}), ${acked.length} acknowledged, ${rows.length} rows, ${replays} replayed batches skipped, ${found} kills inside a COMMIT`);
    expect(replays).toBeGreaterThan(0);
  }, 300_000);
});
