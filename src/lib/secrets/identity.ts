import { closeSync, constants, fstatSync, openSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { readFd } from '../safe-fs/regular-file.js';
import { isIdentity } from './age.js';

export const IDENTITY_ENV = 'EDGECTL_AGE_IDENTITY_FILE';
/** Where age's own tools keep keys is theirs (~/.config/sops/age/keys.txt for SOPS): ours is alongside. */
export const defaultIdentityFile = (home = homedir()) => path.join(home, '.config', 'edgectl', 'age', 'keys.txt');
/**
 * The name of the demo identity a fleet may ship (fleet.example does, so that its demo renders
 * and applies with nothing to set up): used last, when no other identity is found, with a warning.
 * What is encrypted to it is readable by anyone: never for real secrets.
 */
export const DEMO_IDENTITY_FILE = 'DEMO-ONLY-NEVER-USE-FOR-REAL.age-identity.txt';

export const DEMO_FROM = 'the fleet\'s demo identity (demo only)';

export interface IdentitySource {
  /** --age-identity FILE */
  flag?: string;
  /** process.env, for EDGECTL_AGE_IDENTITY_FILE */
  env?: Record<string, string | undefined>;
  home?: string;
  /** A fleet directory whose demo identity (DEMO_IDENTITY_FILE) may be used last. */
  demoFleet?: string;
}

export interface Identities {
  file: string;
  /** How the file was chosen, for messages: "--age-identity", the variable, the default path, the demo. */
  from: string;
  keys: string[];
}

/** Which identity file applies, first of: the flag, the variable, the default file, the demo file of edgectl's own fleet.example. */
export function identityFile(src: IdentitySource): { file: string; from: string } | { missing: string[] } {
  if (src.flag) return { file: src.flag, from: '--age-identity' };
  const env = src.env?.[IDENTITY_ENV];
  if (env) return { file: env, from: IDENTITY_ENV };
  const def = defaultIdentityFile(src.home);
  if (exists(def, false)) return { file: def, from: 'the default identity file' };
  // Only edgectl's own example fleet: a fleet made from it (edgectl init) or copied elsewhere that
  // still holds the demo identity must not decrypt with a key the whole world has, unasked.
  const demo = src.demoFleet && isExampleFleet(src.demoFleet) ? path.join(src.demoFleet, DEMO_IDENTITY_FILE) : undefined;
  if (demo && exists(demo, true)) return { file: demo, from: DEMO_FROM };
  return { missing: ['--age-identity FILE', IDENTITY_ENV, def] };
}

/** The fleet.example that ships with edgectl (its real path). */
const EXAMPLE = (() => {
  try {
    return realpathSync(fileURLToPath(new URL('../../../fleet.example', import.meta.url)));
  } catch {
    return undefined;
  }
})();

function isExampleFleet(dir: string): boolean {
  try {
    return EXAMPLE !== undefined && realpathSync(dir) === EXAMPLE;
  } catch {
    return false;
  }
}

/** The operator's own files may be links (a dotfiles manager's); a file in the fleet never is followed. */
const flags = (noFollow: boolean) => constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0);

function exists(f: string, noFollow: boolean): boolean {
  try {
    closeSync(openSync(f, flags(noFollow)));
    return true;
  } catch {
    return false;
  }
}

/** Reads an age identity file (age-keygen's format: comments and AGE-SECRET-KEY-1… lines). */
export function readIdentities(file: string, from: string): Identities {
  let data: Buffer;
  try {
    const fd = openSync(file, flags(from === DEMO_FROM));
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.size > 64 * 1024) throw new Error('larger than 64 KiB');
      data = readFd(fd, st.size);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new EdgectlError('EDGECTL_SECRET', `cannot read the age identity file ${file} (from ${from}): ${(e as Error).message}`);
  }
  const keys: string[] = [];
  let n = 0;
  for (const raw of data.toString('utf8').split('\n')) {
    n++;
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    // Never quote the line: it may be a key with a typo.
    if (!isIdentity(l)) throw new EdgectlError('EDGECTL_SECRET', `${file}:${n}: not an age X25519 identity (AGE-SECRET-KEY-1…) or a # comment`);
    keys.push(l);
  }
  if (keys.length === 0) throw new EdgectlError('EDGECTL_SECRET', `the age identity file ${file} (from ${from}) holds no AGE-SECRET-KEY-1… line`);
  return { file, from, keys };
}
