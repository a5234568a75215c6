import { lstatSync, mkdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { trackedUnder } from '../fleet/source.js';

/** Links followed while resolving the operator's part of a path, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;

const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');

/**
 * Resolves and creates a directory edgectl writes into (render's output, `--local` nodes) one
 * component at a time, so that no symbolic link inside the fleet is ever followed: the
 * defaults (.edgectl/render, .edgectl/nodes) live in the fleet, and a fleet that committed a
 * link there would turn writes and deletions loose on the operator's disk. Links outside the
 * fleet are the operator's own (a home on another disk, macOS's /tmp) and are followed, one
 * readlink at a time, so a link of theirs that leads into the fleet meets the same rule there.
 * Returns the real path.
 */
function resolveCreating(outDir: string, fleetReal: string | undefined, what: string): string {
  let pending = path.resolve(outDir).split('/').filter(Boolean);
  let cur = '/';
  let hops = 0;
  while (pending.length) {
    const next = path.join(cur, pending[0]);
    let st;
    try {
      st = lstatSync(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(next, { mode: 0o755 }); // EEXIST if something appeared meanwhile: refused, not followed
      st = lstatSync(next);
    }
    if (st.isSymbolicLink()) {
      if (fleetReal && isUnder(next, fleetReal)) {
        throw new EdgectlError('EDGECTL_OUTPUT', `refusing to write ${what} to ${outDir}: ${next} is a symbolic link inside the fleet, and edgectl follows none there`, {
          hint: `Remove the link (a fleet must not commit ${path.relative(fleetReal, next) || '.'}), or choose another directory.`,
        });
      }
      if (++hops > MAX_LINKS) throw new EdgectlError('EDGECTL_OUTPUT', `cannot write ${what} to ${outDir}: too many symbolic links`);
      const target = readlinkSync(next);
      pending = [...target.split('/').filter(Boolean), ...pending.slice(1)];
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    if (!st.isDirectory()) {
      // No link so far: let mkdir say what is in the way (EEXIST for a file at --out, ENOTDIR above it).
      mkdirSync(path.resolve(outDir), { recursive: true });
    }
    pending = pending.slice(1);
    // ".." in a link target: the parent of a real directory is real.
    cur = path.resolve(next);
  }
  return cur;
}

/** No fleet there: nothing of it to avoid (the command's own fleet check says so, coded). */
function realFleet(root: string): string | undefined {
  try {
    return realpathSync(root);
  } catch {
    return undefined;
  }
}

/**
 * Makes the directory ready and returns its real path. Inside the fleet, it must also be
 * something the fleet does not commit: a fleet's own files there would be replaced or deleted
 * as an earlier render's (or node's). `what` names the contents in messages ("bundles").
 */
export async function prepareWriteDir(outDir: string, fleetRoot?: string, what = 'bundles'): Promise<string> {
  const fleetReal = fleetRoot ? realFleet(fleetRoot) : undefined;
  const real = resolveCreating(outDir, fleetReal, what);
  if (fleetReal && isUnder(real, fleetReal)) {
    const rel = path.relative(fleetReal, real) || '.';
    const tracked = await trackedUnder(fleetReal, rel);
    if (tracked.length) {
      throw new EdgectlError('EDGECTL_OUTPUT', `refusing to write ${what} to ${outDir}: the fleet commits ${tracked.length} path(s) there (${tracked.slice(0, 3).join(', ')}${tracked.length > 3 ? ', ...' : ''})`, {
        hint: 'What edgectl writes is never committed: remove it from git (`git rm -r --cached`), or choose another directory.',
      });
    }
  }
  return real;
}
