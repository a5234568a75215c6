import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../helpers/ports.js';
import { type AgentProc, credential, depth, kill9, killAll, restart, sha, startAgent, waitFor } from './helpers.js';
import { createTestDb, type TestDb } from './pg-db.js';

// Exactly once into PostgreSQL while the hub is SIGKILLed at random under load: a batch whose
// COMMIT landed but whose spool delete did not comes again, and must change nothing. A deferred
// trigger makes each COMMIT take ~0.05 s (a loaded database), and half the kills wait for one:
// the server finishes it, the killed hub never learns, and its successor delivers it again.

let dir: string;
let db: TestDb;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-pgcrash-'));
  db = await createTestDb('edgectl_pgsink_crash');
});
afterAll(async () => {
  await killAll();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('postgres sink under hub crashes', () => {
  it('stores every acknowledged message exactly once, in per-topic order, while the hub is killed at random', async () => {
    const [E, EA, H, HA] = await freePorts(4);
    const edgeCred = credential(dir, 'edge-c');
    const topics = ['--topic', 'acme/t1', '--topic', 'acme/t2', '--heartbeat-seconds', '0', '--forward-batch-messages', '50'];
    let hub: AgentProc = await startAgent('hub-c', H, HA, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', db.url(), '--accept-forward', edgeCred.accept(), ...topics]);
    await db.sql.unsafe(`create function edgectl_test_slow_commit() returns trigger language plpgsql as $$ begin perform pg_sleep(0.001); return null; end $$;
      create constraint trigger edgectl_test_slow_commit after insert on edgectl_messages deferrable initially deferred for each row execute function edgectl_test_slow_commit();`).simple();
    const edge = await startAgent('edge-c', E, EA, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${H}/v1/forward`,
      '--credential-file', edgeCred.file, '--token', `acme:${sha('tok')}`, ...topics]);
    const acked: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const r = await fetch(`http://127.0.0.1:${E}/v1/q/t${1 + (w % 2)}`, { method: 'POST', body: `w${w}-${n}`, headers: { authorization: 'Bearer tok' } });
        const j = (await r.json()) as { id?: string };
        if (r.status === 202) acked.push(j.id!);
      }
    };
    const load = Promise.all(Array.from({ length: 2 }, (_, w) => worker(w)));
    const logs: string[] = [];
    // Every other kill at a random moment; the others while the hub's COMMIT is running.
    const inCommit = async () => (await db.sql`select count(*)::int as n from pg_stat_activity
      where datname = ${db.name} and application_name = 'edgectl-hub' and state = 'active' and query ilike 'commit%'`)[0].n > 0;
    for (let round = 0; round < 15; round++) {
      if (round % 2 === 0) await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
      else await waitFor(inCommit, 10_000, 'a COMMIT of the hub', 5).catch(() => {});
      await kill9(hub);
      logs.push(hub.log.join(''));
      hub = await restart(hub);
    }
    stop = true;
    await load;
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(hub)) === 0, 90_000, 'edge and hub to drain', 250);
    logs.push(hub.log.join(''));

    const rows = await db.sql<{ id: string; topic: string; body: Buffer }[]>`select id, topic, body from edgectl_messages where tenant = 'acme' order by seq`;
    expect(acked.length).toBeGreaterThan(200);
    const stored = new Set(rows.map((r) => r.id));
    expect(rows.length).toBe(acked.length);
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    // Per topic, the hub's store order is the edge's: ids (one edge, one epoch) only grow.
    for (const t of ['t1', 't2']) {
      const nums = rows.filter((r) => r.topic === t).map((r) => Number(r.id.slice(r.id.lastIndexOf(':') + 1)));
      expect(nums).toEqual([...nums].sort((a, b) => a - b));
    }
    const replays = logs.join('').match(/messages already in PostgreSQL were skipped/g)?.length ?? 0;
    console.log(`postgres crash test: ${acked.length} acknowledged, ${rows.length} rows, ${replays} replayed batches skipped`);
    expect(replays).toBeGreaterThan(0);
  }, 300_000);
});
