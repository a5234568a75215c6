import { closeSync, constants, fstatSync, openSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { NoFollowTree } from '../safe-fs/no-follow-tree.js';
import { readFd, UnsafeFileError } from '../safe-fs/regular-file.js';

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
  /**
   * Everything under templates/ (read once, from the same place as the documents), so that
   * validate checks exactly the bytes render uses. Optional for sources built by hand.
   */
  templates?: TemplateFile[];
  /** Reads any other file of the fleet (app payloads) from the same place. */
  readExtra(relPath: string): Promise<Buffer | undefined>;
  /** Lists files under a directory of the fleet (for app payloads), relative to the fleet root. */
  listExtra(relDir: string): Promise<string[]>;
  /**
   * Symbolic links (and, in a working tree, FIFOs, sockets and devices) found where fleet files
   * live: edgectl reads none of them, and validate reports those at paths it would read.
   */
  links?: string[];
  /** Paths git tracks under .edgectl/, where edgectl writes (render output, local nodes). */
  reserved?: string[];
}

/** edgectl's own directory inside a fleet: render output and `--local` nodes. A fleet may not commit it. */
export const RESERVED_DIR = '.edgectl';

/** Why edgectl refuses to read a fleet path (a link, a FIFO...): one wording for validate and readers. */
export function unsafePathMessage(rel: string, reason: string): string {
  return `${rel} ${reason}: edgectl follows no symbolic link inside a fleet and reads only regular files (commit the file itself)`;
}

function unsafeError(e: unknown, rel: string): unknown {
  if (e instanceof UnsafeFileError) return new EdgectlError('EDGECTL_FLEET_INVALID', unsafePathMessage(e.path, e.reason), { cause: e });
  if ((e as NodeJS.ErrnoException)?.syscall) return new EdgectlError('EDGECTL_FLEET_INVALID', `cannot read ${rel} in the fleet: ${(e as Error).message}`, { cause: e });
  return e;
}

/** A file under the fleet's templates/: `bytes` only for regular files whose contents are used. */
export interface TemplateFile {
  path: string;
  type: 'file' | 'symlink' | 'other';
  bytes?: Buffer;
}

/** Files under templates/ whose bytes are read (the rest are only listed, to be reported). */
export const TEMPLATE_READ = /^templates\/nginx\/(?:(?:http|server)\.d\/[^/]+|mime\.types)$/;

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

/**
 * Lists the fleet documents under a directory. Synchronous on purpose, like the reads below:
 * for 12,000 small files the thread-pool round trips of fs/promises cost seconds, plain
 * syscalls a few hundred milliseconds. Symlinks are not followed (a link could lead out of
 * the repo or into a loop); FIFOs and devices are not read, so nothing can block a read.
 * Both are noted in `links` (templates/ is walked for them too, and a top-level .edgectl link).
 */
function walk(root: string, rel: string, out: { docs: string[]; links: string[] }, docs = true): void {
  const entries = readdirSync(path.join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const hidden = e.name.startsWith('.') || e.name === 'node_modules';
    if (e.isDirectory()) {
      if (!hidden) walk(root, r, out, docs && !(rel === '' && e.name === 'templates'));
    } else if (e.isFile()) {
      if (docs && isFleetDocumentPath(r)) out.docs.push(r);
    } else if (!hidden || r === RESERVED_DIR) {
      out.links.push(r);
    }
  }
}

/**
 * The fleet's templates/, without following symlinks: a link is listed as one (and refused by
 * validate), never read through.
 */
function walkTemplates(root: string, rel: string, out: TemplateFile[]): TemplateFile[] {
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = `${rel}/${e.name}`;
    if (e.isDirectory()) walkTemplates(root, r, out);
    else if (e.isFile()) out.push({ path: r, type: 'file', ...(TEMPLATE_READ.test(r) ? { bytes: readCapped(path.join(root, r)) } : {}) });
    else out.push({ path: r, type: e.isSymbolicLink() ? 'symlink' : 'other' });
  }
  return out;
}

/** Reads a file, or only MAX_FILE_BYTES + 1 bytes of a larger one: enough for the parser to reject it. */
function readCapped(full: string): Buffer {
  const fd = openSync(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    return readFd(fd, Math.min(fstatSync(fd).size, MAX_FILE_BYTES + 1));
  } finally {
    closeSync(fd);
  }
}

/**
 * The commit and cleanliness of the working tree, in one `git status` (porcelain v2 gives the
 * HEAD commit as a header). Outside git, or without git, there is neither. GIT_OPTIONAL_LOCKS=0
 * keeps status from taking the index lock, so validate never gets in the way of a commit.
 */
async function gitInfo(root: string): Promise<{ commit?: string; dirty: boolean; inGit: boolean }> {
  try {
    const out = (await runGit(root, ['status', '--porcelain=v2', '--branch', '--untracked-files=normal', '--', '.'])).toString();
    let commit: string | undefined;
    let dirty = false;
    for (const line of out.split('\n')) {
      if (line.startsWith('# branch.oid ')) {
        const oid = line.slice('# branch.oid '.length).trim();
        commit = /^[0-9a-f]{40,64}$/.test(oid) ? oid : undefined;
      } else if (line && !line.startsWith('#')) {
        dirty = true;
      }
    }
    return { commit, dirty, inGit: true };
  } catch {
    return { dirty: false, inGit: false };
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
  const info = gitInfo(abs);
  const reserved = trackedUnder(abs, RESERVED_DIR);
  const files: SourceFile[] = [];
  let templates: TemplateFile[];
  const found = { docs: [] as string[], links: [] as string[] };
  try {
    walk(abs, '', found);
    for (const rel of found.docs.sort()) files.push({ path: rel, bytes: readCapped(path.join(abs, rel)) });
    const top = readdirSync(abs, { withFileTypes: true }).find((e) => e.name === 'templates');
    templates = !top ? [] : top.isDirectory() ? walkTemplates(abs, 'templates', []) : [{ path: 'templates', type: top.isSymbolicLink() ? 'symlink' : 'other' }];
    templates.sort((a, b) => (a.path < b.path ? -1 : 1));
  } catch (e) {
    throw new EdgectlError('EDGECTL_FLEET_NOT_FOUND', `cannot read the fleet in ${root}: ${(e as Error).message}`, { cause: e });
  }
  const { commit, dirty, inGit } = await info;
  // Templates, payloads and the like: never through a link, never a FIFO or a device (docs/fleet-format.md).
  const tree = new NoFollowTree(abs);
  const inside = (rel: string) => {
    const r = path.posix.normalize(rel).replace(/\/+$/, '');
    return r === '.' || r.startsWith('../') || r === '..' || path.posix.isAbsolute(r) ? undefined : r;
  };
  return {
    root: abs,
    files,
    templates,
    commit,
    dirty,
    from: inGit ? 'worktree' : 'directory',
    links: found.links.sort(),
    reserved: await reserved,
    async readExtra(rel) {
      const r = inside(rel);
      if (!r) return undefined;
      try {
        return tree.read(r);
      } catch (e) {
        throw unsafeError(e, r);
      }
    },
    async listExtra(relDir) {
      const r = inside(relDir);
      if (!r) return [];
      try {
        return tree.list(r);
      } catch (e) {
        throw unsafeError(e, r);
      }
    },
  };
}

/** What git tracks under a directory of the fleet (relative to the fleet root); nothing outside git. */
export async function trackedUnder(root: string, relDir: string): Promise<string[]> {
  try {
    return (await runGit(root, ['ls-files', '-z', '--', relDir])).toString().split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function runGit(cwd: string, args: string[], input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new EdgectlError('EDGECTL_GIT', `cannot run git: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new EdgectlError('EDGECTL_GIT', `git ${args[0]} failed: ${Buffer.concat(err).toString().trim()}`));
    });
    // git may exit before reading its input (bad revision): that EPIPE is not ours to report.
    child.stdin.on('error', () => {});
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

/**
 * Blob reads asked for in the same turn of the event loop share one `git cat-file --batch`:
 * render reads every app's payload files at once, and one git process per file cost 20 s for
 * 800 files where the working tree takes 0.4 s.
 */
function blobReader(cwd: string): (oid: string) => Promise<Buffer> {
  let queue: { oid: string; resolve: (b: Buffer) => void; reject: (e: unknown) => void }[] = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    catFiles(cwd, batch.map((q) => q.oid)).then(
      (blobs) => batch.forEach((q, i) => q.resolve(blobs[i])),
      (e) => batch.forEach((q) => q.reject(e)),
    );
  };
  return (oid) => new Promise((resolve, reject) => {
    if (queue.length === 0) setImmediate(flush);
    queue.push({ oid, resolve, reject });
  });
}

/** Reads a fleet as it was at a git revision, without a checkout. */
export async function readFleetRev(root: string, rev: string): Promise<FleetSource> {
  const abs = path.resolve(root);
  const st = await stat(abs).catch(() => undefined);
  if (!st?.isDirectory()) throw new EdgectlError('EDGECTL_FLEET_NOT_FOUND', `fleet directory ${root} does not exist`);
  if (!/^[A-Za-z0-9._/~^@{}-]+$/.test(rev) || rev.startsWith('-')) {
    throw new EdgectlError('EDGECTL_GIT', `"${rev}" is not a revision name`);
  }
  const prefix = (await runGit(abs, ['rev-parse', '--show-prefix'])).toString().trim();
  const commit = (await runGit(abs, ['rev-parse', '--verify', '-q', '--end-of-options', `${rev}^{commit}`]).catch(() => {
    throw new EdgectlError('EDGECTL_GIT', `revision "${rev}" is not a commit of the repository at ${root}`);
  })).toString().trim();
  // -l: each blob's size, so a file over the limit is never read into memory.
  const tree = (await runGit(abs, ['ls-tree', '-r', '-l', '-z', '--full-tree', commit, '--', prefix || '.'])).toString();
  const entries = new Map<string, { oid: string; size: number }>();
  const templates: TemplateFile[] = [];
  const links = new Set<string>();
  const reserved: string[] = [];
  for (const line of tree.split('\0')) {
    if (!line) continue;
    const tab = line.indexOf('\t');
    const [mode, type, oid, size] = line.slice(0, tab).split(/ +/);
    const full = line.slice(tab + 1);
    const rel = prefix && full.startsWith(prefix) ? full.slice(prefix.length) : full;
    if (rel.startsWith('templates/')) templates.push({ path: rel, type: mode === '120000' ? 'symlink' : type === 'blob' ? 'file' : 'other' });
    if (rel === RESERVED_DIR || rel.startsWith(RESERVED_DIR + '/')) reserved.push(rel);
    // Like the working-tree reader: regular files only, never symlinks (mode 120000) or submodules.
    if (type !== 'blob') {
      // A submodule where edgectl reads a template is refused like a link (reported as fleet-link).
      if (rel.startsWith('templates/')) links.add(rel);
      continue;
    }
    if (mode === '120000') links.add(rel);
    else entries.set(rel, { oid, size: Number(size) });
  }
  /** A path at or below a committed symlink is refused, as in the working tree (where it would be followed). */
  const linkAbove = (rel: string): string | undefined => {
    for (let p = rel; p !== '.' && p !== ''; p = path.posix.dirname(p)) if (links.has(p)) return p;
    return undefined;
  };
  const refuseLink = (rel: string) => {
    const l = linkAbove(rel);
    if (l) throw new EdgectlError('EDGECTL_FLEET_INVALID', unsafePathMessage(l, 'is a symbolic link'));
  };
  const rels = [...entries.keys()].filter(isFleetDocumentPath).sort();
  const small = rels.filter((r) => entries.get(r)!.size <= MAX_FILE_BYTES);
  const blobs = new Map((await catFiles(abs, small.map((r) => entries.get(r)!.oid))).map((b, i) => [small[i], b]));
  // As the working-tree reader does: an oversized file is passed on as MAX + 1 bytes for the parser to refuse.
  const files = rels.map((rel) => ({ path: rel, bytes: blobs.get(rel) ?? Buffer.alloc(MAX_FILE_BYTES + 1) }));
  // Template bytes as validate and render use them (an oversized one passed on as MAX + 1 bytes, like documents).
  const readT = templates.filter((t) => t.type === 'file' && TEMPLATE_READ.test(t.path));
  const smallT = readT.filter((t) => entries.get(t.path)!.size <= MAX_FILE_BYTES);
  (await catFiles(abs, smallT.map((t) => entries.get(t.path)!.oid))).forEach((b, i) => (smallT[i].bytes = b));
  for (const t of readT) t.bytes ??= Buffer.alloc(MAX_FILE_BYTES + 1);
  templates.sort((a, b) => (a.path < b.path ? -1 : 1));
  const readBlob = blobReader(abs);
  return {
    root: abs,
    files,
    templates,
    commit,
    dirty: false,
    from: 'rev',
    rev,
    links: [...links].filter((l) => !l.split('/').some((p) => p === 'node_modules' || (p.startsWith('.') && l !== RESERVED_DIR))).sort(),
    reserved,
    async readExtra(rel) {
      const r = path.posix.normalize(rel);
      refuseLink(r);
      const e = entries.get(r);
      if (!e) return undefined;
      return readBlob(e.oid);
    },
    async listExtra(relDir) {
      const dir = path.posix.normalize(relDir).replace(/\/$/, '');
      refuseLink(dir);
      const inner = [...links].find((l) => l.startsWith(dir + '/'));
      if (inner) throw new EdgectlError('EDGECTL_FLEET_INVALID', unsafePathMessage(inner, 'is a symbolic link'));
      return [...entries.keys()].filter((k) => k.startsWith(dir + '/')).sort();
    },
  };
}

export function readFleetSource(root: string, rev?: string): Promise<FleetSource> {
  return rev ? readFleetRev(root, rev) : readFleetDir(root);
}
