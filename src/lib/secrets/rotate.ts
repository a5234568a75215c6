import { realpathSync } from 'node:fs';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { readFleetDir } from '../fleet/source-dir.js';
import { encryptTo } from './age.js';
import type { SecretOpener } from './opener.js';
import { fleetRecipients, writeAtomically } from './set.js';

export interface RotateResult {
  /** Fleet-relative paths re-encrypted. */
  files: string[];
  recipients: number;
}

/**
 * `edgectl secret rotate`: every secret (or the ones named) decrypted with the operator's
 * identity and encrypted again, with a new file key, to the Fleet's recipients as they are now
 * (after one was added or removed). The plaintext stays in memory. A removed recipient can still
 * read what it could before: rotate the key itself for that.
 */
export async function rotateSecrets(o: { fleet: string; files?: string[]; secrets: SecretOpener }): Promise<RotateResult> {
  const root = realpathSync(path.resolve(o.fleet));
  const src = await readFleetDir(root);
  const all = new Map((src.secretFiles ?? []).filter((f) => f.path.endsWith('.age')).map((f) => [f.path, f.bytes]));
  const wanted = o.files?.length ? o.files.map((f) => path.relative(root, path.resolve(f)).split(path.sep).join('/')) : [...all.keys()];
  for (const w of wanted) if (!all.has(w)) throw new EdgectlError('EDGECTL_SECRET', `${w} is not a secret of the fleet (a regular *.age file outside dot-directories)`);
  if (wanted.length === 0) throw new EdgectlError('EDGECTL_SECRET', `the fleet in ${o.fleet} has no *.age files`, { hint: 'Add one with `edgectl secret set FILE`.' });
  const recipients = await fleetRecipients(root);
  // Decrypt everything first: one that cannot be decrypted leaves every file as it was.
  const plain = new Map<string, Buffer>();
  for (const f of wanted) plain.set(f, await o.secrets.open(f, all.get(f)!, root));
  for (const [f, p] of plain) {
    writeAtomically(path.dirname(path.join(root, f)), path.basename(f), await encryptTo(recipients, p));
    p.fill(0);
  }
  return { files: wanted, recipients: recipients.length };
}
