/**
 * One OpenSSH public key as the fleet may carry it (`spec.tunnelKey`): `<type> <base64>` and an
 * optional comment of plain characters. The line ends up in a relay's authorized_keys, where
 * anything before the type is an option and anything after the blob a comment, so it is checked
 * to the byte: a known type, canonical base64 whose blob names that same type and has that type's
 * exact length (RSA: a modulus of 2048 to 16384 bits), and nothing else on the line.
 */
export interface SshPublicKey {
  type: string;
  base64: string;
  /** `type base64`, without the fleet's comment (render writes its own). */
  line: string;
}

/** Blob lengths of the fixed-size types: string type, then the key (ecdsa: curve name + point). */
const FIXED: Record<string, number> = {
  'ssh-ed25519': 4 + 11 + 4 + 32,
  'ecdsa-sha2-nistp256': 4 + 19 + 4 + 8 + 4 + 65,
  'ecdsa-sha2-nistp384': 4 + 19 + 4 + 8 + 4 + 97,
  'ecdsa-sha2-nistp521': 4 + 19 + 4 + 8 + 4 + 133,
};
const TYPES = [...Object.keys(FIXED), 'ssh-rsa'];
const COMMENT = /^[A-Za-z0-9._@:+=-]{1,100}$/;

/** The key, or why the text is not one (a message for the fleet's author). */
export function parseSshPublicKey(text: string): SshPublicKey | string {
  if (/[^\x20-\x7e]/.test(text)) return 'must be one line of printable ASCII';
  const parts = text.split(' ');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) return 'must be "<type> <base64>" with an optional comment, single spaces, no options in front';
  const [type, b64, comment] = parts;
  if (!TYPES.includes(type)) return `key type ${JSON.stringify(type)} is not one of ${TYPES.join(', ')}`;
  if (comment !== undefined && !COMMENT.test(comment)) return 'the comment may hold only letters, digits and . _ @ : + = - (at most 100)';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return 'the key is not base64';
  const blob = Buffer.from(b64, 'base64');
  if (blob.toString('base64') !== b64) return 'the key is not canonical base64';
  const fields = sshStrings(blob);
  if (!fields || fields[0].toString('latin1') !== type) return `the key's blob is not a ${type} key`;
  const want = FIXED[type];
  if (want !== undefined) {
    if (blob.length !== want) return `a ${type} key blob is ${want} bytes, this one ${blob.length}`;
    if (type.startsWith('ecdsa-') && fields[1].toString('latin1') !== type.slice('ecdsa-sha2-'.length)) return 'the key names another curve than its type';
  } else {
    const n = fields[2];
    if (fields.length !== 3 || !n) return 'an ssh-rsa key blob is type, exponent and modulus';
    const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
    if (bits < 2048 || bits > 16384) return `an RSA key must have 2048 to 16384 bits (this one about ${bits})`;
  }
  return { type, base64: b64, line: `${type} ${b64}` };
}

/** The blob's SSH strings (uint32 length + bytes), or undefined when they do not fill it exactly. */
function sshStrings(blob: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  for (let i = 0; i < blob.length; ) {
    if (i + 4 > blob.length) return undefined;
    const n = blob.readUInt32BE(i);
    if (i + 4 + n > blob.length) return undefined;
    out.push(blob.subarray(i + 4, i + 4 + n));
    i += 4 + n;
  }
  return out.length ? out : undefined;
}
