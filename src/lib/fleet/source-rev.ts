import { stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { blobReader, catFiles, runGit } from './git.js';
import { MAX_FILE_BYTES, MAX_SECRET_FILE_BYTES, RESERVED_DIR, TEMPLATE_READ, isFleetDocumentPath, isSecretSourcePath, unsafePathMessage, type FleetSource, type TemplateFile } from './source-types.js';

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
  const secretRels = [...entries.keys()].filter((r) => isSecretSourcePath(r) && !isFleetDocumentPath(r)).sort();
  const smallS = secretRels.filter((r) => entries.get(r)!.size <= MAX_SECRET_FILE_BYTES);
  const sBlobs = new Map((await catFiles(abs, smallS.map((r) => entries.get(r)!.oid))).map((b, i) => [smallS[i], b]));
  const secretFiles = secretRels.map((rel) => ({ path: rel, bytes: sBlobs.get(rel) ?? Buffer.alloc(MAX_SECRET_FILE_BYTES + 1) }));
  const readBlob = blobReader(abs);
  return {
    root: abs,
    files,
    templates,
    secretFiles,
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
