import { createHash } from 'node:crypto';
import { EdgectlError } from '../errors.js';
import { decryptWith } from './age.js';
import { DEMO_FROM, identityFile, readIdentities, type Identities, type IdentitySource } from './identity.js';

/**
 * Decrypts the fleet's secrets for render and apply. The identity is looked up only when a secret
 * is opened, so a fleet without secrets never needs one. Every error names the secret's file in
 * the fleet and never quotes a byte of it or of the key.
 */
export interface SecretOpener {
  /** demoFleet: the fleet's root, whose demo identity is the last resort (identity.ts). */
  open(file: string, armored: Buffer, demoFleet?: string): Promise<Buffer>;
  /** Set once the fleet's demo identity was used: the caller warns. */
  readonly usedDemo: boolean;
}

export function secretOpener(src: IdentitySource): SecretOpener {
  let ids: Identities | undefined;
  const cache = new Map<string, Promise<Buffer>>();
  const identities = (file: string, demoFleet?: string): Identities => {
    if (ids) return ids;
    const where = identityFile({ ...src, demoFleet: src.demoFleet ?? demoFleet });
    if ('missing' in where) {
      throw new EdgectlError('EDGECTL_SECRET', `cannot decrypt ${file}: no age identity (looked for ${where.missing.join(', ')})`, {
        hint: 'Pass --age-identity FILE (or set EDGECTL_AGE_IDENTITY_FILE) with a key whose public key is in the Fleet\'s spec.secrets.recipients.',
      });
    }
    return (ids = readIdentities(where.file, where.from));
  };
  return {
    get usedDemo() {
      return ids?.from === DEMO_FROM;
    },
    open(file, armored, demoFleet) {
      const key = `${file}\0${createHash('sha256').update(armored).digest('hex')}`;
      let p = cache.get(key);
      if (!p) {
        const id = identities(file, demoFleet);
        p = decryptWith(id.keys, armored).then((plain) => {
          if (!plain) {
            throw new EdgectlError('EDGECTL_SECRET', `cannot decrypt ${file}: the age identity ${id.file} (from ${id.from}) is not one of its recipients`, {
              hint: 'Use the identity of a recipient the file was encrypted to, or have someone who can decrypt it re-encrypt it to the Fleet\'s recipients (`edgectl secret set`).',
            });
          }
          return plain;
        }, (e) => {
          if (e instanceof EdgectlError) throw e;
          throw new EdgectlError('EDGECTL_SECRET', `cannot decrypt ${file}: it is damaged or not an age file (${(e as Error).message.replace(/[^\x20-\x7e]/g, '?').slice(0, 120)})`);
        });
        cache.set(key, p);
      }
      return p;
    },
  };
}
