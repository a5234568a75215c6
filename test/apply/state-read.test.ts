import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { readState } from '../../src/lib/release/state.js';

// The state read finds both links with one GNU find. A node whose find cannot (busybox's has no
// -printf) must be an error, not a node that seems to hold no release.
describe('the state read on a node', () => {
  let dir = '';
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('reads current and good, none when absent, and fails closed when find cannot list them', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ec-state-read-'));
    const root = path.join(dir, 'root');
    const a = 'a'.repeat(20);
    const b = 'b'.repeat(20);
    await mkdir(path.join(root, 'releases', a), { recursive: true });
    await mkdir(path.join(root, 'releases', b), { recursive: true });
    const t = new LocalTransport('n1');
    const none = await readState(t, root);
    expect([none.initialised, none.current, none.good]).toEqual([true, undefined, undefined]);
    await symlink(`releases/${a}`, path.join(root, 'current'));
    const one = await readState(t, root);
    expect([one.current, one.good]).toEqual([a, undefined]);
    await symlink(`releases/${b}`, path.join(root, 'good'));
    expect(await readState(t, root)).toMatchObject({ current: a, good: b });

    // A find that refuses -printf, first on the PATH.
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'find'), '#!/bin/sh\necho "find: unrecognized: -printf" >&2\nexit 1\n');
    await chmod(path.join(bin, 'find'), 0o755);
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
      await expect(readState(t, root)).rejects.toThrow(/current and good releases failed: its find cannot list them/);
    } finally {
      process.env.PATH = saved;
    }
  });
});
