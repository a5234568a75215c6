import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { cleanTemps, git, tempDir } from './helpers.js';

afterAll(cleanTemps);

describe('readExtra at a git revision', { timeout: 120_000 }, () => {
  it('many concurrent reads (one batch) return each file its own bytes, as the working tree does', async () => {
    const repo = await tempDir('src');
    const rels = Array.from({ length: 300 }, (_, i) => `sites/s${i % 30}/f${i}.txt`);
    for (const [i, rel] of rels.entries()) {
      await mkdir(path.dirname(path.join(repo, rel)), { recursive: true });
      // Sizes differ from file to file, one is empty and one holds newlines only: the batch output is split by size.
      await writeFile(path.join(repo, rel), i === 7 ? '' : i === 8 ? '\n\n\n' : `file ${i}\n`.repeat(1 + (i % 13)));
    }
    git(repo, 'init', '-q');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'payloads');
    const atRev = await readFleetSource(repo, 'HEAD');
    const tree = await readFleetSource(repo);
    expect(await atRev.listExtra('sites')).toEqual(await tree.listExtra('sites'));
    const [fromRev, fromTree] = await Promise.all([atRev, tree].map((s) => Promise.all(rels.map((r) => s.readExtra(r)))));
    expect(fromRev.map((b) => b?.toString())).toEqual(fromTree.map((b) => b?.toString()));
    expect(fromRev[7]?.length).toBe(0);
    expect(await Promise.all([atRev.readExtra('sites/none.txt'), atRev.readExtra(rels[3])])).toEqual([undefined, Buffer.from('file 3\n'.repeat(4))]);
  });
});
