import { randomBytes } from 'node:crypto';
import { closeSync, constants, lstatSync, mkdirSync, openSync, realpathSync, renameSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { checkFile } from '../fleet/validate.js';
import { readFleetDir } from '../fleet/source-dir.js';
import { runGit } from '../fleet/git.js';
import type { FleetSpec } from '../fleet/schema.js';
import { encryptTo, MAX_SECRET_BYTES } from './age.js';

export interface SetSecretOptions {
  fleet: string;
  /** The secret's path: relative to the cwd or absolute, inside the fleet, ending in .age. */
  target: string;
  plaintext: Buffer;
  /** --from FILE: where the plaintext came from (refused inside the fleet repo). */
  from?: string;
}

export interface SetSecret {
  /** Relative to the fleet root. */
  file: string;
  recipients: number;
  bytes: number;
}

const refuse = (message: string, hint: string) => new EdgectlError('EDGECTL_SECRET', message, { hint });

/**
 * `edgectl secret set`: encrypts the plaintext to the Fleet's recipients and writes the armored
 * file in place (a temporary name next to it, fsynced, renamed over). The plaintext never
 * touches a disk: it comes from stdin or from a file outside the fleet.
 */
export async function setSecret(o: SetSecretOptions): Promise<SetSecret> {
  const root = realpathSync(path.resolve(o.fleet));
  const abs = path.resolve(o.target);
  const dir = path.dirname(abs);
  if (!abs.endsWith('.age')) throw refuse(`${o.target}: a secret's file name ends in .age`, `Name it ${path.basename(abs)}.age: only *.age files are taken for encrypted secrets, and anything else would be committed in plaintext.`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const realDir = realpathSync(dir);
  // A trailing separator: /fleet-other is not inside /fleet.
  if (realDir !== root && !realDir.startsWith(root + path.sep)) throw refuse(`${o.target} is not inside the fleet ${o.fleet}`, 'Give a path inside the fleet repo (or --fleet the repo it belongs to).');
  const rel = path.relative(root, path.join(realDir, path.basename(abs))).split(path.sep).join('/');
  if (rel.split('/').some((s) => s.startsWith('.') || s === 'node_modules') || rel.startsWith('templates/')) throw refuse(`${rel} is where edgectl reads no secret (a dot-directory, node_modules or templates/)`, 'Put secrets under tls/ (TLS keys) or another plain directory of the fleet.');
  if (o.from) await refusePlaintextInFleet(root, o.from);
  if (o.plaintext.length === 0) throw refuse('the plaintext is empty', 'Pipe the secret on stdin (`edgectl secret set FILE < key.pem`) or pass --from FILE.');
  if (o.plaintext.length > MAX_SECRET_BYTES / 2) throw refuse(`the plaintext is ${o.plaintext.length} bytes: a secret is at most ${MAX_SECRET_BYTES / 2}`, 'Keep only the key or token in it.');
  const recipients = await fleetRecipients(root);
  const armored = await encryptTo(recipients, o.plaintext);
  writeAtomically(realDir, path.basename(abs), armored);
  return { file: rel, recipients: recipients.length, bytes: armored.length };
}

/** The Fleet document's recipients, read even when other documents have errors (the secret may be what they lack). */
export async function fleetRecipients(root: string): Promise<string[]> {
  const src = await readFleetDir(root);
  for (const f of src.files) {
    for (const { resource } of checkFile(f).docs) {
      if (resource?.kind !== 'Fleet') continue;
      const r = (resource.spec as FleetSpec).secrets?.recipients;
      if (r?.length) return r;
      throw refuse(`the Fleet document (${f.path}) lists no spec.secrets.recipients`, 'Add the age public keys (age1…) of the operators and CI who may decrypt: age-keygen -y KEYFILE prints one.');
    }
  }
  throw refuse(`no valid Fleet document in ${root}`, 'Run `edgectl validate` and fix the Fleet document first.');
}

/** The plaintext's own file must not be in the fleet repo, where it could be committed. */
async function refusePlaintextInFleet(root: string, from: string): Promise<void> {
  let real: string;
  try {
    real = realpathSync(from);
  } catch {
    return; // reading it fails later with its own message
  }
  if (real === root || real.startsWith(root + path.sep)) {
    const rel = path.relative(root, real);
    const ignored = await runGit(root, ['check-ignore', '-q', '--', rel]).then(() => true, () => false);
    throw refuse(`--from ${from} is inside the fleet repo${ignored ? '' : ' and not ignored by git'}: its plaintext could be committed`, 'Keep the plaintext outside the repo (or pipe it on stdin), then delete it once encrypted.');
  }
}

/**
 * Writes `rel` (a path inside the fleet repo at `root`) with writeAtomically, making its missing
 * directories 0755 one at a time: every directory on the way must be a real directory of the repo,
 * never a symbolic link (a committed link could point anywhere on the operator's machine), and
 * nothing is created before that is known.
 */
export function writeInFleet(root: string, rel: string, data: Buffer): void {
  const parts = rel.split('/');
  if (path.isAbsolute(rel) || parts.some((p) => p === '' || p === '.' || p === '..')) throw refuse(`${rel} is not a plain path inside the fleet`, 'Name files relative to the fleet repo, without . or .. parts.');
  let dir = realpathSync(root);
  for (const p of parts.slice(0, -1)) {
    dir = path.join(dir, p);
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      mkdirSync(dir, { mode: 0o755 });
      continue;
    }
    if (st.isSymbolicLink()) throw refuse(`${path.relative(root, dir)} in the fleet is a symbolic link`, 'edgectl writes into the fleet only through real directories: replace the link with a directory.');
    if (!st.isDirectory()) throw refuse(`${path.relative(root, dir)} in the fleet is not a directory`, 'Move the file out of the way.');
  }
  writeAtomically(dir, parts[parts.length - 1], data);
}

export function writeAtomically(dir: string, name: string, data: Buffer): void {
  const target = path.join(dir, name);
  try {
    if (lstatSync(target).isSymbolicLink()) throw refuse(`${target} is a symbolic link`, 'Remove the link: edgectl writes secrets only as regular files.');
  } catch (e) {
    if (e instanceof EdgectlError) throw e;
  }
  const tmp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  let ok = false;
  try {
    writeSync(fd, data);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) unlinkSync(tmp);
  }
  renameSync(tmp, target);
}
