import { mkdir, readdir, rm, rmdir, unlink, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { manifestBytes, type Bundle } from './bundle.js';

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function listFiles(dir: string): Promise<string[] | undefined> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath ?? (e as any).path, e.name)).split(path.sep).join('/'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes directories left empty by pruning (deepest first); non-empty ones stay. */
async function pruneEmptyDirs(root: string, rels: string[]): Promise<void> {
  const dirs = new Set<string>();
  for (const r of rels) for (let d = path.posix.dirname(r); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) await rmdir(path.join(root, d)).catch(() => undefined);
}

/**
 * Writes bundles to `<outDir>/<node>/`: every file, then manifest.json last (a directory with a
 * manifest is complete), removing files of an earlier render that the bundle no longer has.
 * Node directories are written with bounded concurrency (many small files: the thread pool,
 * not the disk, is the limit).
 */
export async function writeBundles(bundles: Bundle[], outDir: string, opts: { concurrency?: number } = {}): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await mapLimit(bundles, opts.concurrency ?? 16, async (b) => {
    const dir = path.join(outDir, b.node);
    const existing = await listFiles(dir);
    if (existing) {
      const keep = new Set(b.files.map((f) => f.path));
      const stale = existing.filter((p) => !keep.has(p) && p !== MANIFEST_FILE);
      // The old manifest goes first: a half-updated directory must not look complete.
      await rm(path.join(dir, MANIFEST_FILE), { force: true });
      await Promise.all(stale.map((p) => unlink(path.join(dir, p))));
      await pruneEmptyDirs(dir, stale);
    }
    const dirs = new Set<string>();
    for (const f of b.files) dirs.add(path.posix.dirname(f.path));
    for (const d of [...dirs].sort()) await mkdir(path.join(dir, d), { recursive: true });
    await Promise.all(b.files.map(async (f) => {
      const p = path.join(dir, f.path);
      await writeFile(p, f.data, { mode: f.mode });
      if (existing) await chmod(p, f.mode);
    }));
    await writeFile(path.join(dir, MANIFEST_FILE), manifestBytes(b.manifest), { mode: 0o644 });
  });
}
