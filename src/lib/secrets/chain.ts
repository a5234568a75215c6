import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/**
 * A PEM certificate chain as nginx wants it in ssl_certificate: CERTIFICATE blocks only (a key
 * in the file would be shipped readable), the leaf first, each signed by the next. Returns the
 * certificates or why the file is not such a chain.
 */
export function parseChain(bytes: Buffer): X509Certificate[] | string {
  const text = bytes.toString('latin1');
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(text)) return 'is not a PEM text file';
  const certs: X509Certificate[] = [];
  let rest = text;
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== 'CERTIFICATE') return `holds a ${m[1]} block: a certificate file holds certificates only`;
    try {
      certs.push(new X509Certificate(m[0]));
    } catch (e) {
      return `certificate ${certs.length + 1} does not parse (${(e as Error).message.slice(0, 100)})`;
    }
    rest = rest.replace(m[0], '');
  }
  if (certs.length === 0) return 'holds no PEM CERTIFICATE block';
  if (rest.trim() !== '') return 'holds text outside its PEM blocks';
  if (certs.length > 10) return `holds ${certs.length} certificates: a chain is the leaf and a few intermediates`;
  if (certs[0].ca) return 'starts with a CA certificate: the leaf (the app\'s own certificate) comes first';
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i].checkIssued(certs[i + 1]) || !certs[i].verify(certs[i + 1].publicKey)) return `certificate ${i + 1} is not signed by certificate ${i + 2}: the chain must be in order, leaf first`;
  }
  return certs;
}

/** True when the PEM chain has an OCSP responder (nginx's ssl_stapling needs one, else it warns). */
export function hasOcsp(leaf: X509Certificate): boolean {
  return /OCSP - URI:/.test(leaf.infoAccess ?? '');
}

/** Why a decrypted key cannot go with the certificate, or undefined (never quotes the key). */
export function keyProblem(key: Buffer, leaf: X509Certificate): string | undefined {
  let pub;
  try {
    pub = createPublicKey(createPrivateKey(key));
  } catch {
    return 'does not hold a PEM private key';
  }
  const a = pub.export({ type: 'spki', format: 'der' });
  const b = leaf.publicKey.export({ type: 'spki', format: 'der' });
  return a.equals(b) ? undefined : 'is not the key of the certificate';
}
