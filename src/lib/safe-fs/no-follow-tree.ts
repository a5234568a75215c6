import { lstatSync, readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { describeType, readRegularFile, UnsafeFileError } from './regular-file.js';

const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * Files below a root, reached without following any symbolic link at or below it: each
 * component of a path is lstat'ed (each directory once), and a link anywhere is refused, as
 * are FIFOs, sockets and devices. A link is refused even when it points back inside: what it
 * points at is only known when it is followed, and git (`--rev`) never follows one either.
 * The root itself is the caller's (an operator's --fleet may well be a link). Paths in errors
 * are relative to the root.
 */
export class NoFollowTree {
  private readonly dirs = new Set<string>(['']);

  constructor(readonly root: string) {}

  /** Reads a regular file; undefined when it (or a directory above it) does not exist. */
  read(rel: string, maxBytes?: number): Buffer | undefined {
    if (!this.isDir(parentOf(rel))) return undefined;
    try {
      return readRegularFile(path.join(this.root, rel), { noFollow: true, maxBytes });
    } catch (e) {
      if (e instanceof UnsafeFileError) throw new UnsafeFileError(rel, e.reason);
      if (MISSING.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw e;
    }
  }

  /** The regular files below a directory, recursively, relative to the root and sorted. */
  list(relDir: string): string[] {
    const dir = relDir.replace(/\/+$/, '');
    if (!this.isDir(dir)) return [];
    const out: string[] = [];
    this.walk(dir, out);
    return out.sort();
  }

  private walk(dir: string, out: string[]): void {
    for (const e of readdirSync(path.join(this.root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        this.dirs.add(rel);
        this.walk(rel, out);
      } else if (e.isFile()) {
        out.push(rel);
      } else {
        throw new UnsafeFileError(rel, `is ${describeType(lstatSync(path.join(this.root, rel)))}`);
      }
    }
  }

  /** True for a real directory, false when missing (or not a directory); throws on a link. */
  private isDir(rel: string): boolean {
    if (this.dirs.has(rel)) return true;
    if (!this.isDir(parentOf(rel))) return false;
    let st: Stats;
    try {
      st = lstatSync(path.join(this.root, rel));
    } catch (e) {
      if (MISSING.has((e as NodeJS.ErrnoException).code ?? '')) return false;
      throw e;
    }
    if (st.isSymbolicLink()) throw new UnsafeFileError(rel, 'is a symbolic link');
    if (!st.isDirectory()) return false;
    this.dirs.add(rel);
    return true;
  }
}

function parentOf(rel: string): string {
  const d = path.posix.dirname(rel);
  return d === '.' || d === '/' ? '' : d;
}
