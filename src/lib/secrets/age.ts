import { EdgectlError } from '../errors.js';

/**
 * age (age-encryption.org/v1) through FiloSottile's typage: files in the fleet are ASCII-armored,
 * encrypted to X25519 recipients (`age1…`). The library is loaded on first use: validate never
 * needs it (it checks a secret's shape, secretShape below, without any key).
 */
type Age = typeof import('age-encryption');
let lib: Promise<Age> | undefined;
const age = () => (lib ??= import('age-encryption'));

/** A secret in the fleet is small (a key, a token): anything larger is not one. */
export const MAX_SECRET_BYTES = 64 * 1024;
export const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
const ARMOR_END = '-----END AGE ENCRYPTED FILE-----';
/** An age X25519 recipient: "age1" and 58 bech32 characters (a 32-byte key). */
export const RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;
const IDENTITY_RE = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

export const isRecipient = (s: string) => RECIPIENT_RE.test(s);
export const isIdentity = (s: string) => IDENTITY_RE.test(s);

/** Encrypts to every recipient, armored (text that git diffs and merges as text). */
export async function encryptTo(recipients: readonly string[], plaintext: Uint8Array): Promise<Buffer> {
  if (recipients.length === 0) throw new EdgectlError('EDGECTL_SECRET', 'no recipients to encrypt to', { hint: 'List the public keys of the operators and CI in the Fleet\'s spec.secrets.recipients.' });
  const { Encrypter, armor } = await age();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return Buffer.from(armor.encode(await e.encrypt(plaintext)));
}

/** Decrypts with the identities, or undefined when none of them is a recipient of the file. */
export async function decryptWith(identities: readonly string[], armored: Buffer): Promise<Buffer | undefined> {
  const { Decrypter, armor } = await age();
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  const raw = armor.decode(armored.toString('latin1'));
  try {
    return Buffer.from(await d.decrypt(raw));
  } catch (e) {
    // typage says "no identity matched any of the file's recipients" for a key that is not one of them.
    if (/no identity matched/i.test((e as Error).message)) return undefined;
    throw e;
  }
}

export async function recipientOf(identity: string): Promise<string> {
  return (await age()).identityToRecipient(identity);
}

export async function newIdentity(): Promise<string> {
  return (await age()).generateX25519Identity();
}

/** What a secret's header says, read without a key. */
export interface SecretShape {
  /** X25519 stanzas: one per recipient it was encrypted to (they are anonymous by design). */
  x25519: number;
  /** Other stanza types (scrypt: a passphrase, which CI and nodes cannot supply). */
  others: string[];
}

/**
 * The shape of an armored age file, or why it is not one: the armor (strict base64, 64 columns),
 * the v1 header line, its stanzas and the MAC line. Nothing is decrypted.
 */
export function secretShape(bytes: Buffer): SecretShape | string {
  if (bytes.length > MAX_SECRET_BYTES) return `is ${bytes.length} bytes, over the ${MAX_SECRET_BYTES} a secret may have`;
  const text = bytes.toString('latin1').replace(/\r\n/g, '\n').trim();
  const lines = text.split('\n');
  if (lines[0] !== ARMOR_BEGIN) return `is not an ASCII-armored age file (its first line is not "${ARMOR_BEGIN}"): plaintext, or binary age output (use \`edgectl secret set\`, or age -a)`;
  if (lines[lines.length - 1] !== ARMOR_END) return `has no "${ARMOR_END}" line`;
  const body = lines.slice(1, -1);
  if (body.length === 0 || body.some((l, i) => !/^[A-Za-z0-9+/]*={0,2}$/.test(l) || l.length > 64 || (i < body.length - 1 && l.length !== 64))) return 'has a malformed armor body (base64 in lines of 64 characters)';
  const raw = Buffer.from(body.join(''), 'base64');
  const end = raw.indexOf('\n--- ');
  if (end < 0) return 'has no age header MAC line ("--- ")';
  const head = raw.subarray(0, end).toString('latin1').split('\n');
  if (head[0] !== 'age-encryption.org/v1') return 'is not an age v1 file (header line "age-encryption.org/v1" missing)';
  const shape: SecretShape = { x25519: 0, others: [] };
  for (const l of head.slice(1)) {
    if (!l.startsWith('-> ')) continue;
    const type = l.slice(3).split(' ')[0];
    if (type === 'X25519') shape.x25519++;
    else shape.others.push(type.replace(/[^\x21-\x7e]/g, '?').slice(0, 40));
  }
  if (shape.x25519 + shape.others.length === 0) return 'has no recipient stanza';
  return shape;
}
