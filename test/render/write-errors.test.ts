import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isEdgectlError } from '../../src/lib/errors.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles, type Bundle } from '../../src/lib/render/index.js';
import { cli } from '../helpers/cli.js';
import { TEST_VERSION, copyExample, tempDir } from './helpers.js';

/** `edgectl render …` as a process: its exit code and stderr. */
const renderCli = async (args: string[]) => {
  const { code, stderr } = await cli(['render', ...args]);
  return { code, stderr };
};

/** A real full file system: a 128 KiB tmpfs (fleet.example's bundles need about 400 KB). */
function smallDisk(dir: string): string {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', dir]);
  return dir;
}

/** A bundle with a manifest is complete: every file it lists is there at its size. */
async function expectManifestsComplete(out: string): Promise<void> {
  for (const node of await readdir(out)) {
    const manifest = await readFile(path.join(out, node, 'manifest.json'), 'utf8').catch(() => undefined);
    if (manifest === undefined) continue;
    for (const [rel, f] of Object.entries(JSON.parse(manifest).files as Record<string, { size: number }>)) {
      expect((await stat(path.join(out, node, rel))).size, `${node}/${rel}`).toBe(f.size);
    }
  }
}

/** An output directory that cannot take the bundles is the operator's to fix: a coded error, not "a bug". */
describe('writing bundles where they cannot go', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let fleet: string;
  let bundles: Bundle[];
  let mounted = '';
  let mountedCli = '';
  beforeAll(async () => {
    tmp = await tempDir('write-errors');
    fleet = await copyExample(tmp.dir);
    bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: TEST_VERSION });
  });
  afterAll(async () => {
    for (const m of [mounted, mountedCli]) if (m) execFileSync('umount', [m]);
    await tmp.cleanup();
  });

  it('--out naming a file: EDGECTL_OUTPUT with the path', async () => {
    const file = path.join(tmp.dir, 'a-file');
    await writeFile(file, 'x');
    const err = await writeBundles(bundles, file).then(() => undefined, (e: unknown) => e);
    expect(isEdgectlError(err) && err.code).toBe('EDGECTL_OUTPUT');
    expect((err as Error).message).toContain(`cannot write bundles to ${file}: EEXIST`);
    const below = await writeBundles(bundles, path.join(file, 'sub')).then(() => undefined, (e: unknown) => e);
    expect(isEdgectlError(below) && below.code).toBe('EDGECTL_OUTPUT');
    expect((below as Error).message).toMatch(/ENOTDIR/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('a full disk: EDGECTL_OUTPUT, and no cut-short bundle has a manifest.json', async () => {
    mounted = path.join(tmp.dir, 'small');
    await mkdir(mounted);
    smallDisk(mounted);
    const err = await writeBundles(bundles, mounted).then(() => undefined, (e: unknown) => e);
    expect(isEdgectlError(err) && err.code).toBe('EDGECTL_OUTPUT');
    expect((err as Error).message).toMatch(/ENOSPC/);
    const dirs = await readdir(mounted);
    expect(dirs.length).toBeGreaterThan(0);
    expect(dirs.length).toBeLessThan(bundles.length + 1);
    await expectManifestsComplete(mounted);
  });

  it('edgectl render onto a full disk (written by its worker thread): exit 1, EDGECTL_OUTPUT, no stack, no complete-looking cut-short bundle', async () => {
    mountedCli = path.join(tmp.dir, 'small-cli');
    await mkdir(mountedCli);
    smallDisk(mountedCli);
    const r = await renderCli(['--fleet', fleet, '--out', mountedCli]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write bundles to .*small-cli: ENOSPC.*\[EDGECTL_OUTPUT\]/);
    expect(r.stderr).not.toMatch(/EDGECTL_INTERNAL|at .*\.js:\d+/);
    await expectManifestsComplete(mountedCli);
  });

  it('edgectl render --out FILE exits 1 with the coded error and no stack', async () => {
    const file = path.join(tmp.dir, 'cli-file');
    await writeFile(file, 'x');
    const r = await renderCli(['--fleet', fleet, '--out', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write bundles to .*cli-file: EEXIST.*\[EDGECTL_OUTPUT\]/);
    expect(r.stderr).not.toMatch(/EDGECTL_INTERNAL|at .*\.js:\d+/);
  });
});
