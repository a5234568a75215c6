import { closeSync, constants, fstatSync, openSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { NoFollowTree } from '../safe-fs/no-follow-tree.js';
import { readFd, UnsafeFileError } from '../safe-fs/regular-file.js';
import { trackedUnder, worktreeStatus } from './git.js';
import { MAX_FILE_BYTES, MAX_SECRET_FILE_BYTES, RESERVED_DIR, TEMPLATE_READ, isFleetDocumentPath, isSecretSourcePath, unsafePathMessage, type FleetSource, type SourceFile, type TemplateFile } from './source-types.js';

function unsafeError(e: unknown, rel: string): unknown {
  if (e instanceof UnsafeFileError) return new EdgectlError('EDGECTL_FLEET_INVALID', unsafePathMessage(e.path, e.reason), { cause: e });
  if ((e as NodeJS.ErrnoException)?.syscall) return new EdgectlError('EDGECTL_FLEET_INVALID', `cannot read ${rel} in the fleet: ${(e as Error).message}`, { cause: e });
  return e;
}

/** Dot-directories and node_modules hold no fleet files (docs/fleet-format.md). */
const isHidden = (name: string) => name.startsWith('.') || name === 'node_modules';

/**
 * Lists the fleet documents under a directory. Synchronous on purpose, like the reads below:
 * for 12,000 small files the thread-pool round trips of fs/promises cost seconds, plain
 * syscalls a few hundred milliseconds. Symlinks are not followed (a link could lead out of
 * the repo or into a loop); FIFOs and devices are not read, so nothing can block a read.
 * Both are noted in `links` (a top-level .edgectl link too). The top-level templates/ is read
 * once, by walkTemplates, whose links and special files are noted in `links` as well.
 */
function walk(root: string, rel: string, out: { docs: string[]; links: string[]; templates: TemplateFile[]; secrets: string[] }): void {
  const entries = readdirSync(path.join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const hidden = isHidden(e.name);
    if (rel === '' && e.name === 'templates') {
      if (!e.isDirectory()) {
        out.templates.push({ path: r, type: e.isSymbolicLink() ? 'symlink' : 'other' });
        out.links.push(r);
        continue;
      }
      walkTemplates(root, r, out.templates);
      for (const t of out.templates) if (t.type !== 'file' && !t.path.split('/').some(isHidden)) out.links.push(t.path);
    } else if (e.isDirectory()) {
      if (!hidden) walk(root, r, out);
    } else if (e.isFile()) {
      if (isFleetDocumentPath(r)) out.docs.push(r);
      else if (isSecretSourcePath(r)) out.secrets.push(r);
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
function readCapped(full: string, max = MAX_FILE_BYTES): Buffer {
  const fd = openSync(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    return readFd(fd, Math.min(fstatSync(fd).size, max + 1));
  } finally {
    closeSync(fd);
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
  const info = worktreeStatus(abs);
  const reserved = trackedUnder(abs, RESERVED_DIR);
  const files: SourceFile[] = [];
  const found = { docs: [] as string[], links: [] as string[], templates: [] as TemplateFile[], secrets: [] as string[] };
  const templates = found.templates;
  const secretFiles: SourceFile[] = [];
  try {
    walk(abs, '', found);
    for (const rel of found.docs.sort()) files.push({ path: rel, bytes: readCapped(path.join(abs, rel)) });
    for (const rel of found.secrets.sort()) secretFiles.push({ path: rel, bytes: readCapped(path.join(abs, rel), MAX_SECRET_FILE_BYTES) });
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
    secretFiles,
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
