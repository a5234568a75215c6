import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, credential, depth, killAll, post, sha, startAgent, status, waitFor } from './helpers.js';
import { freePortRange } from '../helpers/ports.js';

// The spool on an 8 MB tmpfs (needs root: mount -t tmpfs). Upstream absent at first, so it fills up.
let dir: string;
let mnt: string;
let mounted = false;
let edge: AgentProc;
// Free ports, found in beforeAll: the edge's and the hub's device API (each admin API on the next port).
let EDGE: number;
let HUB: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-diskfull-'));
  mnt = path.join(dir, 'small');
  execFileSync('mkdir', ['-p', mnt]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  mounted = true;
  await writeFile(path.join(mnt, 'filler'), Buffer.alloc(4 << 20, 1));
  EDGE = await freePortRange(2);
  HUB = await freePortRange(2);
  edge = await startAgent('edge-d', EDGE, EDGE + 1, ['--role', 'edge', '--data', path.join(mnt, 'data'), '--upstream', `http://127.0.0.1:${HUB}/v1/forward`,
    '--credential-file', credential(dir, 'edge-d').file, '--token', `acme:${sha('tok')}`, '--topic', 'acme/t', '--heartbeat-seconds', '0']);
}, 300_000);

afterAll(async () => {
  await killAll();
  if (mounted) execFileSync('umount', ['-l', mnt]);
  await rm(dir, { recursive: true, force: true });
});

describe('disk full', () => {
  it('answers 507 with Retry-After, never acknowledges unsynced data, recovers when space is freed, loses nothing', async () => {
    const acked: string[] = [];
    const body = 'd'.repeat(2048);
    let full: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 6000 && !full; i++) {
      const r = await post(edge.port, 't', `${i}:${body}`, { authorization: 'Bearer tok' });
      if (r.status === 202) acked.push(r.json.id);
      else full = r;
    }
    expect(full?.status).toBe(507);
    expect(full?.json.error).toBe('storage_unavailable');
    expect(full?.headers.get('retry-after')).toBe('5');
    expect(acked.length).toBeGreaterThan(100);
    // Still full: still refused, still alive, and it says why.
    const again = await post(edge.port, 't', body, { authorization: 'Bearer tok' });
    expect(again.status).toBe(507);
    const s = await status(edge);
    expect(s.store.writeErrors).toBeGreaterThan(0);
    expect(s.store.lastWriteError.message).toMatch(/space|ENOSPC|IO error/i);
    expect(s.store.quarantined).toHaveLength(0);
    expect(edge.proc.exitCode).toBeNull();

    await unlink(path.join(mnt, 'filler'));
    let back: Awaited<ReturnType<typeof post>> | undefined;
    await waitFor(async () => {
      back = await post(edge.port, 't', 'after', { authorization: 'Bearer tok' });
      return back.status === 202;
    }, 30_000, 'writes to be accepted again', 500);
    acked.push(back!.json.id);

    // Everything acknowledged before and after the outage reaches the hub exactly once.
    const sink = path.join(dir, 'sink.jsonl');
    const hub = await startAgent('hub-d', HUB, HUB + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${sink}`,
      '--accept-forward', credential(dir, 'edge-d').accept(), '--topic', 'acme/t', '--heartbeat-seconds', '0']);
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(hub)) === 0, 120_000, 'drain', 500);
    const ids = (await readFile(sink, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(new Set(ids).size).toBe(ids.length);
    const got = new Set(ids);
    expect(acked.filter((id) => !got.has(id))).toEqual([]);
  }, 240_000);
});
