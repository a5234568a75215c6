import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, admin, kill9, killAll, post, sha, startAgent, status, waitFor } from './helpers.js';
import { freePortRange } from '../helpers/ports.js';

// Garbage in the store's files: the agent starts anyway, salvages or quarantines, says so loudly, keeps serving.
let dir: string;
// Free ports, found in beforeAll: each test's hub (its admin API on the next port).
let Q: number;
let R: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-corrupt-'));
  Q = await freePortRange(2);
  R = await freePortRange(2);
});
afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

function hub(name: string, port: number, data: string, sink: string): Promise<AgentProc> {
  return startAgent(name, port, port + 1, ['--role', 'hub', '--data', data, '--sink', `file:${sink}`, '--token', `acme:${sha('tok')}`, '--topic', 'acme/t', '--heartbeat-seconds', '0']);
}

async function fill(a: AgentProc, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(a.port, 't', `before-${i}`, { authorization: 'Bearer tok' });
    expect(r.status).toBe(202);
    ids.push(r.json.id);
  }
  return ids;
}

async function sinkIds(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
}

describe('corruption', { timeout: 240_000 }, () => {
  it('a store whose every file is garbage is kept in quarantine, repaired or replaced, reported, and serves', async () => {
    const data = path.join(dir, 'a');
    const sink = path.join(dir, 'a.jsonl');
    // The sink path is a directory, so nothing drains and the records stay in the store.
    let a = await hub('hub-q', Q, data, path.join(dir, 'not-a-file') + '/');
    await fill(a, 20);
    await kill9(a);
    const store = path.join(data, 'spool');
    for (const f of await readdir(store)) await writeFile(path.join(store, f), Buffer.alloc(4096, 0xa5));
    a = await hub('hub-q', Q, data, sink);
    const s = await status(a);
    expect(s.store.state).toBe('open');
    expect(s.store.quarantined).toHaveLength(1);
    expect(s.store.incidents.length).toBeGreaterThan(0);
    // The garbage itself is kept, byte for byte, for an operator to look at.
    const kept = s.store.quarantined[0];
    const firstBytes = await Promise.all((await readdir(kept)).map(async (f: string) => (await readFile(path.join(kept, f)))[0]));
    expect(firstBytes.filter((b) => b === 0xa5).length).toBeGreaterThan(1);
    const metrics = await (await admin(a, '/metrics')).text();
    expect(metrics).toMatch(/^edgectl_store_quarantined 1$/m);
    expect(a.log.join('')).toMatch(/quarantine/);
    const r = await post(a.port, 't', 'after', { authorization: 'Bearer tok' });
    expect(r.status).toBe(202);
    await waitFor(async () => (await sinkIds(sink)).includes(r.json.id), 10_000, 'delivery after quarantine');
  });

  it('a store with a garbage MANIFEST and CURRENT is repaired and its messages are still delivered', async () => {
    const data = path.join(dir, 'b');
    const sink = path.join(dir, 'b.jsonl');
    let a = await hub('hub-r', R, data, path.join(dir, 'not-a-file-b') + '/');
    const ids = await fill(a, 20);
    await kill9(a);
    const store = path.join(data, 'spool');
    for (const f of await readdir(store)) if (/^(CURRENT|MANIFEST-)/.test(f)) await writeFile(path.join(store, f), 'garbage\n'.repeat(64));
    a = await hub('hub-r', R, data, sink);
    const s = await status(a);
    expect(s.store.incidents.map((i: { kind: string }) => i.kind)).toContain('repaired');
    expect(s.store.quarantined).toHaveLength(1);
    expect(s.store.incidents[0].reason).toMatch(/20 messages salvaged/);
    expect(await (await admin(a, '/metrics')).text()).toMatch(/^edgectl_store_repaired_total 1$/m);
    const r = await post(a.port, 't', 'after', { authorization: 'Bearer tok' });
    expect(r.status).toBe(202);
    await waitFor(async () => (await sinkIds(sink)).length >= 21, 10_000, 'salvaged messages delivered');
    const got = await sinkIds(sink);
    expect(got).toEqual(expect.arrayContaining([...ids, r.json.id]));
    expect(new Set(got).size).toBe(got.length);
  });
});
