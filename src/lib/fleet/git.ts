// The git processes fleet reading runs: one spawn per question, blobs batched through one cat-file.
import { spawn } from 'node:child_process';
import { EdgectlError } from '../errors.js';

/**
 * The commit and cleanliness of the working tree, in one `git status` (porcelain v2 gives the
 * HEAD commit as a header). Outside git, or without git, there is neither. GIT_OPTIONAL_LOCKS=0
 * keeps status from taking the index lock, so validate never gets in the way of a commit.
 */
export async function worktreeStatus(root: string): Promise<{ commit?: string; dirty: boolean; inGit: boolean }> {
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

/** What git tracks under a directory of the fleet (relative to the fleet root); nothing outside git. */
export async function trackedUnder(root: string, relDir: string): Promise<string[]> {
  try {
    return (await runGit(root, ['ls-files', '-z', '--', relDir])).toString().split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export function runGit(cwd: string, args: string[], input?: string): Promise<Buffer> {
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
export async function catFiles(cwd: string, oids: string[]): Promise<Buffer[]> {
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
export function blobReader(cwd: string): (oid: string) => Promise<Buffer> {
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

