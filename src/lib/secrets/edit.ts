import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync, closeSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { encryptTo } from './age.js';
import type { SecretOpener } from './opener.js';
import { fleetRecipients, writeAtomically } from './set.js';

/**
 * Where `secret edit` puts the plaintext for the editor: a 0700 directory of the user's own,
 * never a shared one like /tmp ($XDG_RUNTIME_DIR, a tmpfs of the user's, when there is one).
 */
export function privateEditDir(env: Record<string, string | undefined>, home = homedir()): string {
  const base = env.XDG_RUNTIME_DIR && statSync(env.XDG_RUNTIME_DIR, { throwIfNoEntry: false })?.isDirectory() ? path.join(env.XDG_RUNTIME_DIR, 'edgectl') : path.join(home, '.cache', 'edgectl');
  mkdirSync(base, { recursive: true, mode: 0o700 });
  chmodSync(base, 0o700);
  return mkdtempSync(path.join(base, 'edit-'));
}

/**
 * `edgectl secret edit FILE`: decrypts into a private directory, runs $VISUAL / $EDITOR on it,
 * and encrypts what was saved to the Fleet's recipients. The plaintext file is overwritten with
 * zeros and removed whatever happens; an unchanged or empty result writes nothing.
 */
export async function editSecret(o: { fleet: string; file: string; secrets: SecretOpener; env: Record<string, string | undefined> }): Promise<{ file: string; changed: boolean }> {
  const root = realpathSync(path.resolve(o.fleet));
  const abs = realpathSync(path.resolve(o.file));
  if (!abs.startsWith(root + path.sep) || !abs.endsWith('.age')) throw new EdgectlError('EDGECTL_SECRET', `${o.file} is not a *.age file inside the fleet ${o.fleet}`);
  const rel = path.relative(root, abs).split(path.sep).join('/');
  const plain = await o.secrets.open(rel, readFileSync(abs), root);
  const recipients = await fleetRecipients(root);
  const editor = o.env.VISUAL || o.env.EDITOR || 'vi';
  const dir = privateEditDir(o.env);
  const tmp = path.join(dir, path.basename(abs, '.age'));
  let edited: Buffer;
  try {
    writeFileSync(tmp, plain, { mode: 0o600, flag: 'wx' });
    // The editor is a command line of the user's own ($EDITOR may carry flags), run by their shell.
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', tmp], { stdio: 'inherit' });
    if (r.status !== 0) throw new EdgectlError('EDGECTL_SECRET', `the editor (${editor}) exited with ${r.status ?? r.signal}: ${rel} is unchanged`);
    edited = readFileSync(tmp);
  } finally {
    wipe(tmp);
    rmSync(dir, { recursive: true, force: true });
  }
  if (edited.equals(plain) || edited.length === 0) return { file: rel, changed: false };
  writeAtomically(path.dirname(abs), path.basename(abs), await encryptTo(recipients, edited));
  edited.fill(0);
  return { file: rel, changed: true };
}

function wipe(file: string): void {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, Buffer.alloc(size), 0, size, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    // gone already (an editor that renames), removed with its directory
  }
}
