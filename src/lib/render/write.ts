import { linkSync, mkdirSync, readdirSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import { manifestBytes, type Bundle } from './bundle.js';

function listFiles(dir: string): string[] | undefined {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as any).path, e.name)).split(path.sep).join('/'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes directories left empty by pruning (deepest first); non-empty ones stay. */
function pruneEmptyDirs(root: string, rels: string[]): void {
  const dirs = new Set<string>();
  for (const r of rels) for (let d = path.posix.dirname(r); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(path.join(root, d));
    } catch {
      // not empty: still used by the new bundle
    }
  }
}

/**
 * Where each content (sha256 from the manifest) was first written with a given mode, so later
 * copies are hard links to it: one link(2) instead of open, write and close, and the data is on
 * disk once. Keyed by content, not by object, so it works across a worker's messages too.
 */
export type Written = Map<string, string>;

function place(written: Written, key: string, p: string, data: Buffer, mode: number): void {
  const first = written.get(key);
  if (first !== undefined) {
    try {
      linkSync(first, p);
      return;
    } catch (e) {
      // EMLINK (too many links to one inode) or anything odd: a plain copy, which later ones link to.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw e;
    }
  }
  writeFileSync(p, data, { mode });
  written.set(key, p);
}

export function writeOne(outDir: string, b: Bundle, written: Written): void {
  const dir = path.join(outDir, b.node);
  const existing = listFiles(dir);
  // Over an earlier render: files the bundle no longer has go (and directories they leave empty);
  // files it still has are unlinked just before being placed again, since each may be a hard
  // link shared with other bundles and must never be written through. Their directories stay.
  const replace = new Set<string>();
  const dirs = new Set<string>();
  if (existing) {
    // The old manifest goes first: a half-updated directory must not look complete.
    rmSync(path.join(dir, MANIFEST_FILE), { force: true });
    const keep = new Set(b.files.map((f) => f.path));
    const stale: string[] = [];
    for (const p of existing) {
      if (p === MANIFEST_FILE) continue;
      if (keep.has(p)) {
        replace.add(p);
        dirs.add(path.posix.dirname(p));
      } else stale.push(p);
    }
    for (const p of stale) unlinkSync(path.join(dir, p));
    pruneEmptyDirs(dir, stale);
  } else {
    mkdirSync(dir);
  }
  let lastDir = '';
  for (const f of b.files) {
    const d = path.posix.dirname(f.path);
    if (d !== lastDir) {
      if (!dirs.has(d)) mkdirSync(path.join(dir, d), { recursive: true });
      lastDir = d;
    }
    const p = path.join(dir, f.path);
    if (replace.has(f.path)) unlinkSync(p);
    const m = b.manifest.files[f.path];
    place(written, `${m?.sha256 ?? ''}:${f.mode}`, p, f.data, f.mode);
  }
  writeFileSync(path.join(dir, MANIFEST_FILE), manifestBytes(b.manifest), { mode: 0o644 });
}

/** An error writing the output is the operator's to fix (a file in the way, read-only, full): coded. */
export function outputError(outDir: string, e: unknown): unknown {
  // A bundle cut short has no manifest.json, so it never reads as complete; the next render replaces it.
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string' || !err.syscall) return e;
  return new EdgectlError('EDGECTL_OUTPUT', `cannot write bundles to ${outDir}: ${err.message}`, { cause: e });
}

/**
 * Writes bundles to `<outDir>/<node>/`: every file, then manifest.json last (a directory with a
 * manifest is complete), removing files of an earlier render that the bundle no longer has.
 *
 * Synchronous writes in slices, yielding to the event loop between slices: a render writes
 * tens of thousands of small files, and measured here the thread-pool round trips of async
 * writes (open, write, close: three each) cost about three times the CPU of plain syscalls.
 * Files with the same content are hard links to one another (see place()): the output is for
 * reading, checking and diffing; edit the fleet, not a rendered file. `BundleWriter`
 * (write-pipeline.ts) does the same on a worker thread while render goes on.
 */
export async function writeBundles(bundles: Bundle[], outDir: string, opts: { sliceMs?: number } = {}): Promise<void> {
  try {
    mkdirSync(outDir, { recursive: true });
    const slice = opts.sliceMs ?? 50;
    let since = performance.now();
    const written: Written = new Map();
    for (const b of bundles) {
      writeOne(outDir, b, written);
      if (performance.now() - since > slice) {
        await new Promise((r) => setImmediate(r));
        since = performance.now();
      }
    }
  } catch (e) {
    throw outputError(outDir, e);
  }
}
