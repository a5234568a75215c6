import { readdir, readFile, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { EdgectlError } from '../errors.js';

/** One file of a fleet repo, as bytes: decoding (and rejecting non-UTF-8) is the parser's job. */
export interface SourceFile {
  /** Path relative to the fleet root, with "/" separators. */
  path: string;
  bytes: Buffer;
}

export interface FleetSource {
  root: string;
  files: SourceFile[];
  /** The commit the files come from (HEAD for a working tree), undefined outside git. */
  commit?: string;
  /** True when the working tree differs from `commit`. Always false with --rev. */
  dirty: boolean;
  /** Where the files were read from: the working tree or a named revision. */
  from: 'worktree' | 'rev' | 'directory';
  rev?: string;
  /** Reads any other file of the fleet (templates, app payloads) from the same place. */
  readExtra(relPath: string): Promise<Buffer | undefined>;
  /** Lists files under a directory of the fleet (for app payloads), relative to the fleet root. */
  listExtra(relDir: string): Promise<string[]>;
}

/** Files larger than this are rejected before parsing: a fleet document is never this big. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

const YAML_FILE = /\.ya?ml$/;

/** Which files are fleet documents: YAML anywhere but under templates/, dot-directories and node_modules. */
export function isFleetDocumentPath(rel: string): boolean {
  if (!YAML_FILE.test(rel)) return false;
  const parts = rel.split('/');
  if (parts[0] === 'templates') return false;
  return !parts.some((p) => p.startsWith('.') || p === 'node_modules');
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const dir = path.join(root, rel);
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  const subdirs: Promise<string[]>[] = [];
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (e.name.startsWith('.') || e.name === 'node_modules' || (rel === '' && e.name === 'templates')) continue;
      subdirs.push(walk(root, r));
    } else if (e.isFile() && isFleetDocumentPath(r)) {
      out.push(r);
    }
  }
  for (const s of await Promise.all(subdirs)) out.push(...s);
  return out;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return results;
}

async function gitInfo(root: string): Promise<{ commit?: string; dirty: boolean; top?: string }> {
  try {
    const git = simpleGit({ baseDir: root });
    const top = (await git.revparse(['--show-toplevel'])).trim();
    let commit: string | undefined;
    try {
      commit = (await git.revparse(['--verify', '-q', 'HEAD'])).trim() || undefined;
    } catch {
      commit = undefined;
    }
    const status = await git.raw(['status', '--porcelain', '--untracked-files=normal', '--', '.']);
    return { commit, dirty: status.trim().length > 0, top };
  } catch {
    return { dirty: false };
  }
}

/** Reads a fleet from a directory (its working tree when it is in git). */
export async function readFleetDir(root: string): Promise<FleetSource> {
  const abs = path.resolve(root);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new EdgectlError('EDGECTL_FLEET_NOT_FOUND', `fleet directory ${root} does not exist`);
  }
  if (!st.isDirectory()) throw new EdgectlError('EDGECTL_FLEET_NOT_FOUND', `${root} is not a directory`);
  const [rels, info] = await Promise.all([walk(abs), gitInfo(abs)]);
  rels.sort();
  const files = await mapLimit(rels, 64, async (rel) => {
    const full = path.join(abs, rel);
    const s = await stat(full);
    // Oversized files are passed on truncated to one byte past the limit, so the parser reports them.
    const bytes = s.size > MAX_FILE_BYTES ? Buffer.alloc(MAX_FILE_BYTES + 1) : await readFile(full);
    return { path: rel, bytes };
  });
  const inside = (rel: string) => {
    const full = path.resolve(abs, rel);
    return full === abs || full.startsWith(abs + path.sep) ? full : undefined;
  };
  return {
    root: abs,
    files,
    commit: info.commit,
    dirty: info.dirty,
    from: info.top ? 'worktree' : 'directory',
    async readExtra(rel) {
      const full = inside(rel);
      if (!full) return undefined;
      try {
        return await readFile(full);
      } catch {
        return undefined;
      }
    },
    async listExtra(relDir) {
      const full = inside(relDir);
      if (!full) return [];
      try {
        const entries = await readdir(full, { recursive: true, withFileTypes: true });
        return entries
          .filter((e) => e.isFile())
          .map((e) => path.relative(abs, path.join(e.parentPath ?? (e as any).path, e.name)).split(path.sep).join('/'))
          .sort();
      } catch {
        return [];
      }
    },
  };
}

function runGit(cwd: string, args: string[], input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new EdgectlError('EDGECTL_GIT', `cannot run git: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new EdgectlError('EDGECTL_GIT', `git ${args[0]} failed: ${Buffer.concat(err).toString().trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** Reads blobs in one `git cat-file --batch` process: thousands of files cost one spawn. */
async function catFiles(cwd: string, oids: string[]): Promise<Buffer[]> {
  if (oids.length === 0) return [];
  const raw = await runGit(cwd, ['cat-file', '--batch'], oids.join('\n') + '\n');
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; i < oids.length; i++) {
    const nl = raw.indexOf(10, pos);
    const header = raw.subarray(pos, nl).toString();
    const size = Number(header.split(' ')[2]);
    out.push(raw.subarray(nl + 1, nl + 1 + size));
    pos = nl + 1 + size + 1;
  }
  return out;
}

/** Reads a fleet as it was at a git revision, without a checkout. */
export async function readFleetRev(root: string, rev: string): Promise<FleetSource> {
  const abs = path.resolve(root);
  if (!/^[A-Za-z0-9._/~^@{}-]+$/.test(rev) || rev.startsWith('-')) {
    throw new EdgectlError('EDGECTL_GIT', `"${rev}" is not a revision name`);
  }
  const commit = (await runGit(abs, ['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`])).toString().trim();
  const prefix = (await runGit(abs, ['rev-parse', '--show-prefix'])).toString().trim();
  const tree = (await runGit(abs, ['ls-tree', '-r', '-z', '--full-tree', commit, '--', prefix || '.'])).toString();
  const entries = new Map<string, { oid: string; size?: number }>();
  for (const line of tree.split('\0')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    const [, type, oid] = line.slice(0, tab).split(' ');
    const full = line.slice(tab + 1);
    if (type !== 'blob') continue;
    const rel = prefix && full.startsWith(prefix) ? full.slice(prefix.length) : full;
    entries.set(rel, { oid });
  }
  const rels = [...entries.keys()].filter(isFleetDocumentPath).sort();
  const blobs = await catFiles(abs, rels.map((r) => entries.get(r)!.oid));
  const files = rels.map((rel, i) => ({ path: rel, bytes: blobs[i].length > MAX_FILE_BYTES ? blobs[i].subarray(0, MAX_FILE_BYTES + 1) : blobs[i] }));
  return {
    root: abs,
    files,
    commit,
    dirty: false,
    from: 'rev',
    rev,
    async readExtra(rel) {
      const e = entries.get(path.posix.normalize(rel));
      if (!e) return undefined;
      return (await catFiles(abs, [e.oid]))[0];
    },
    async listExtra(relDir) {
      const dir = path.posix.normalize(relDir).replace(/\/$/, '') + '/';
      return [...entries.keys()].filter((k) => k.startsWith(dir)).sort();
    },
  };
}

export function readFleetSource(root: string, rev?: string): Promise<FleetSource> {
  return rev ? readFleetRev(root, rev) : readFleetDir(root);
}
