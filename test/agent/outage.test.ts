import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, credential, depth, kill9, killAll, restart, rssMb, sha, startAgent, waitFor } from './helpers.js';
import { freePortRange } from '../helpers/ports.js';

// The relay is down for a while under load: the edge keeps accepting (bounded memory), then drains.
let dir: string;
let edge: AgentProc;
let relay: AgentProc;
let hub: AgentProc;
// Free ports, found in beforeAll: each agent's device API (its admin API on the next port).
const P = { edge: 0, relay: 0, hub: 0 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-outage-'));
  for (const k of ['edge', 'relay', 'hub'] as const) P[k] = await freePortRange(2);
  const topics = ['--topic', 'acme/a', '--topic', 'acme/b', '--heartbeat-seconds', '0'];
  const edgeCred = credential(dir, 'edge-o');
  const relayCred = credential(dir, 'relay-o');
  hub = await startAgent('hub-o', P.hub, P.hub + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${path.join(dir, 'sink.jsonl')}`, '--accept-forward', relayCred.accept('edge-o'), ...topics]);
  relay = await startAgent('relay-o', P.relay, P.relay + 1, ['--role', 'relay', '--data', path.join(dir, 'relay'), '--upstream', `http://127.0.0.1:${P.hub}/v1/forward`,
    '--credential-file', relayCred.file, '--accept-forward', edgeCred.accept(), ...topics]);
  edge = await startAgent('edge-o', P.edge, P.edge + 1, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${P.relay}/v1/forward`,
    '--credential-file', edgeCred.file, '--token', `acme:${sha('tok')}`, ...topics]);
}, 300_000);

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('outage: relay down under load', () => {
  it('grows the edge backlog with bounded memory and drains it all after the relay returns', async () => {
    await kill9(relay);
    const acked = new Set<string>();
    const line = JSON.stringify({ reading: 'x'.repeat(400) });
    const batch = Array.from({ length: 1000 }, () => line).join('\n') + '\n';
    let peak = 0;
    const rss0 = rssMb(edge.proc.pid!);
    // 80 batches x 1000 messages x ~0.45 KB = ~36 MB of data waiting.
    for (let i = 0; i < 80; i++) {
      const r = await fetch(`http://127.0.0.1:${P.edge}/v1/q/${i % 2 ? 'a' : 'b'}`, { method: 'POST', body: batch, headers: { authorization: 'Bearer tok', 'content-type': 'application/x-ndjson' } });
      expect(r.status).toBe(202);
      for (const id of ((await r.json()) as { ids: string[] }).ids) acked.add(id);
      if (i % 10 === 0) peak = Math.max(peak, rssMb(edge.proc.pid!));
    }
    expect(await depth(edge)).toBe(80_000);
    peak = Math.max(peak, rssMb(edge.proc.pid!));
    console.log(`outage: edge RSS ${rss0.toFixed(0)} MB at start, peak ${peak.toFixed(0)} MB with 80,000 messages (~36 MB) waiting`);
    expect(peak).toBeLessThan(250);

    relay = await restart(relay);
    const t0 = Date.now();
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(relay)) === 0 && (await depth(hub)) === 0, 400_000, 'backlog to drain', 500);
    console.log(`outage: drained 80,000 messages edge -> relay -> hub -> file in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const lines = (await readFile(path.join(dir, 'sink.jsonl'), 'utf8')).trim().split('\n');
    const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
    expect(new Set(ids).size).toBe(ids.length);
    const got = new Set(ids);
    let missing = 0;
    for (const id of acked) if (!got.has(id)) missing++;
    expect(missing).toBe(0);
  }, 600_000);
});
