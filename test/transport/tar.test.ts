import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tarArchive } from '../../src/lib/transport/tar.js';

/**
 * The archive the one-shot activation unpacks at a node's root, read by real GNU tar the way the
 * node runs it (tar -x -p -m --no-same-owner): a directory entry given twice is made with the
 * first entry's mode and left with the last's once the archive ends, so a staging directory is
 * 0700 while its files are written; symlinks are made as they are.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgectl-tar-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const none = Buffer.alloc(0);
const untar = (archive: Buffer, cwd: string) => execa('tar', ['-x', '-p', '-m', '--no-same-owner', '-f', '-', '-C', cwd], { input: archive });

describe('tarArchive read by GNU tar', () => {
  it('a directory made 0700 by its first entry, its files written inside, then 755 from its last entry; a symlink to a relative target', async () => {
    const archive = tarArchive([
      { path: 'releases/.tmp-r', data: none, kind: 'dir', mode: 0o700 },
      { path: 'releases/.tmp-r/secret.key', data: Buffer.from('k'), mode: 0o600 },
      { path: 'releases/.tmp-r/nginx/site.conf', data: Buffer.from('c') },
      { path: '.current.tmp-n', data: none, kind: 'symlink', link: 'releases/r' },
      { path: 'releases/.tmp-r', data: none, kind: 'dir', mode: 0o755 },
    ]);
    await mkdir(join(dir, 'releases'));
    // Cut after the secret: what a stream broken midway leaves is still 0700.
    const cut = archive.subarray(0, 512 * 4);
    const half = join(dir, 'half');
    await mkdir(join(half, 'releases'), { recursive: true });
    await untar(cut, half).catch(() => undefined);
    expect((await stat(join(half, 'releases/.tmp-r'))).mode & 0o777).toBe(0o700);
    expect(await readFile(join(half, 'releases/.tmp-r/secret.key'), 'utf8')).toBe('k');

    await untar(archive, dir);
    expect((await stat(join(dir, 'releases/.tmp-r'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dir, 'releases/.tmp-r/secret.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'releases/.tmp-r/nginx/site.conf'))).mode & 0o777).toBe(0o644);
    expect((await lstat(join(dir, '.current.tmp-n'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, '.current.tmp-n'))).toBe('releases/r');
    // -m: made now, not at the archive's time (a release's activation time is its directory's mtime).
    expect(Math.abs((await stat(join(dir, 'releases/.tmp-r'))).mtimeMs - Date.now())).toBeLessThan(60_000);
  });

  it('refuses an absolute or climbing symlink target, a link without a target and a directory with data', () => {
    for (const link of ['/etc/shadow', '../x', 'a/../../x', '', 'x'.repeat(101)]) {
      expect(() => tarArchive([{ path: 'l', data: none, kind: 'symlink', link }])).toThrow(/unsafe symlink target/);
    }
    expect(() => tarArchive([{ path: 'd', data: Buffer.from('x'), kind: 'dir' }])).toThrow(/with data/);
    expect(() => tarArchive([{ path: '../d', data: none, kind: 'dir' }])).toThrow(/unsafe path/);
  });
});
