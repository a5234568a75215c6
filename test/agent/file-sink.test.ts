import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileSink } from '../../src/lib/agent/sinks/file.js';
import { sinkLines } from '../../src/lib/agent/sinks/format.js';
import type { SpoolMessage } from '../../src/lib/agent/store/record.js';
import { freePorts } from '../helpers/ports.js';
import { type AgentProc, credential, depth, kill9, killAll, restart, sha, startAgent, waitFor } from './helpers.js';

// Issue 12 item 8: the file sink exactly once, across SIGKILLs of the hub between the file's
// fdatasync and the spool's delete.

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-filesink-'));
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

const msg = (id: string, body = id): SpoolMessage => ({ id, tenant: 'acme', topic: 't', contentType: 'text/plain', ts: 0, body: Buffer.from(body) });
const idsIn = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string; tenant: string }));

describe('file sink', () => {
  it('after a restart skips what its tail already holds and cuts a torn last line', async () => {
    const file = path.join(dir, 'unit.jsonl');
    // Two batches written; the hub died while writing a third (no newline, never synced, never acknowledged).
    await writeFile(file, sinkLines([msg('e:1:1'), msg('e:1:2')]) + sinkLines([msg('e:1:3')]) + '{"id":"e:1:4","tenant":"ac');
    const sink = new FileSink(file);
    // The spool still holds the last batch (never deleted) and hands it on again, with what came after.
    await sink.deliver({ messages: () => [msg('e:1:3'), msg('e:1:4'), msg('e:1:5')] });
    await sink.deliver({ messages: () => [msg('e:1:4'), msg('e:1:5'), msg('e:1:6')] }); // the spool's delete failed: the same batch again
    await sink.close();
    const lines = await idsIn(file);
    expect(lines.map((l) => l.id)).toEqual(['e:1:1', 'e:1:2', 'e:1:3', 'e:1:4', 'e:1:5', 'e:1:6']);
  });

  it('writes every acknowledged message exactly once while the hub is killed at random', async () => {
    const [E, EA, H, HA] = await freePorts(4);
    const sinkFile = path.join(dir, 'sink.jsonl');
    const edgeCred = credential(dir, 'edge-f');
    const topics = ['--topic', 'acme/t1', '--topic', 'acme/t2', '--heartbeat-seconds', '0', '--forward-batch-messages', '50'];
    let hub: AgentProc = await startAgent('hub-f', H, HA, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${sinkFile}`, '--accept-forward', edgeCred.accept(), ...topics]);
    const edge = await startAgent('edge-f', E, EA, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${H}/v1/forward`,
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
    const load = Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
    for (let round = 0; round < 15; round++) {
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
      await kill9(hub);
      hub = await restart(hub);
    }
    stop = true;
    await load;
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(hub)) === 0, 60_000, 'edge and hub to drain', 250);
    const ids = (await idsIn(sinkFile)).filter((l) => l.tenant === 'acme').map((l) => l.id);
    const seen = new Set<string>();
    const twice = ids.filter((id) => seen.has(id) || !seen.add(id));
    expect(acked.length).toBeGreaterThan(200);
    expect(twice).toEqual([]);
    const inFile = new Set(ids);
    expect(acked.filter((id) => !inFile.has(id))).toEqual([]);
  }, 240_000);
});
