import { closeSync, constants, linkSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE, manifestBytes } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import type { Bundle } from './bundle.js';
import { prepareWriteDir } from '../safe-fs/write-dir.js';

/**
 * Present in a node's directory while render rewrites it (manifest.json is gone by then): a
 * directory with neither is not a bundle and is never written into, so a fleet's node names
 * cannot aim render's deletions at an operator's directory that happens to share the --out.
 */
export const PARTIAL_MARK = '.edgectl-partial';

/** Exclusive creation: never writes through a link or an existing file (each is unlinked first). */
const CREATE = 'wx';

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
  writeFileSync(p, data, { mode, flag: CREATE });
  written.set(key, p);
}

/**
 * The node's directory: created, or an earlier bundle's (listed without following links, since
 * readdir's recursion does not enter them). A link there, or a directory of something else, is refused.
 */
function nodeDir(dir: string): string[] | undefined {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir);
    closeSync(openSync(dir + '/' + PARTIAL_MARK, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644));
    return undefined;
  }
  if (st.isSymbolicLink()) throw new EdgectlError('EDGECTL_OUTPUT', `refusing to write the bundle to ${dir}: it is a symbolic link, and render follows none`, { hint: 'Remove the link, or choose another --out.' });
  if (!st.isDirectory()) mkdirSync(dir); // EEXIST, as a coded output error
  const existing = listFiles(dir) ?? [];
  if (existing.length && !existing.includes(MANIFEST_FILE) && !existing.includes(PARTIAL_MARK)) {
    throw new EdgectlError('EDGECTL_OUTPUT', `refusing to write the bundle to ${dir}: it holds files but is not a bundle edgectl wrote (no ${MANIFEST_FILE})`, { hint: 'Move the directory away, or choose another --out.' });
  }
  if (!existing.includes(PARTIAL_MARK)) closeSync(openSync(dir + '/' + PARTIAL_MARK, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644));
  return existing;
}

/** `outDir` must come from prepareWriteDir (a real directory, reached through no link of the fleet). */
export function writeOne(outDir: string, b: Bundle, written: Written): void {
  const dir = path.join(outDir, b.node);
  const existing = nodeDir(dir);
  // Over an earlier render: files the bundle no longer has go (and directories they leave empty);
  // files it still has are unlinked just before being placed again, since each may be a hard
  // link shared with other bundles and must never be written through. Their directories stay.
  // A link found in there is a "file" to readdir: unlinked (the link itself), never followed.
  const replace = new Set<string>();
  const dirs = new Set<string>();
  if (existing) {
    // The old manifest goes first: a half-updated directory must not look complete.
    rmSync(path.join(dir, MANIFEST_FILE), { force: true });
    const keep = new Set(b.files.map((f) => f.path));
    const stale: string[] = [];
    for (const p of existing) {
      if (p === MANIFEST_FILE || p === PARTIAL_MARK) continue;
      if (keep.has(p)) {
        replace.add(p);
        dirs.add(path.posix.dirname(p));
      } else stale.push(p);
    }
    for (const p of stale) unlinkSync(path.join(dir, p));
    pruneEmptyDirs(dir, stale);
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
  writeFileSync(path.join(dir, MANIFEST_FILE), manifestBytes(b.manifest), { mode: 0o644, flag: CREATE });
  unlinkSync(path.join(dir, PARTIAL_MARK));
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
export async function writeBundles(bundles: Bundle[], outDir: string, opts: { sliceMs?: number; fleetRoot?: string } = {}): Promise<void> {
  try {
    outDir = await prepareWriteDir(outDir, opts.fleetRoot);
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
