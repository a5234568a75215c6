import 'reflect-metadata';
import { isIP } from 'node:net';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The fleet CA's X.509 work, on the operator's machine only (node:crypto verifies certificates
 * but cannot sign them; @peculiar/x509 does, in pure JS over WebCrypto, so no key ever goes
 * through a temp file or another process). The agent never loads this module: it verifies with
 * node:tls against the CA's PEM.
 */
x509.cryptoProvider.set(webcrypto as never);

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface KeyAndCert {
  certPem: string;
  /** PKCS#8 PEM: a secret (age-encrypt it before it touches the repo). */
  keyPem: string;
}

const serial = () => {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  return b.toString('hex');
};

async function keyPem(k: Key): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', k));
  try {
    return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  } finally {
    der.fill(0);
  }
}

async function importKey(pem: string): Promise<Key> {
  const b64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(b64, 'base64');
  try {
    return await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  } finally {
    der.fill(0);
  }
}

/** A self-signed ECDSA P-256 CA that may sign end-entity certificates only (pathLen 0). */
export async function createCa(o: { name: string; days: number; now?: Date }): Promise<KeyAndCert> {
  const now = o.now ?? new Date();
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as KeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=${o.name}`, keys: keys as never, signingAlgorithm: ALG,
    notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + o.days * DAY),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys.privateKey) };
}

/**
 * A hop's server certificate: a new P-256 key, signed by the CA, for `names` (DNS names and IP
 * addresses, as the next hop's upstream URL spells its host). serverAuth only.
 */
export async function issueServerCert(ca: KeyAndCert, o: ServerCertOptions): Promise<KeyAndCert> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as KeyPair;
  return { certPem: await signServerCert(ca, keys.publicKey, o), keyPem: await keyPem(keys.privateKey) };
}

export interface ServerCertOptions { cn: string; names: readonly string[]; days: number; now?: Date; notBefore?: Date }

/** The same for a key the CA never sees (born on the node): its public key, from a CSR or the previous certificate. */
export async function signServerCert(ca: Pick<KeyAndCert, 'certPem' | 'keyPem'>, publicKey: Key, o: ServerCertOptions): Promise<string> {
  const now = o.now ?? new Date();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importKey(ca.keyPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject: `CN=${o.cn}`, issuer: caCert.subject, publicKey: publicKey as never, signingKey: caKey as never, signingAlgorithm: ALG,
    notBefore: o.notBefore ?? new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + o.days * DAY),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(o.names.map((n) => ({ type: isIP(n) ? 'ip' as const : 'dns' as const, value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString('pem') + '\n';
}

const importSpki = (der: ArrayBuffer) => webcrypto.subtle.importKey('spki', der, ALG, true, ['verify']);

/**
 * The P-256 public key of a PKCS#10 request (`openssl req -new …` on the node), once its own
 * signature verifies (whoever made it holds the key). Why not, as a string.
 */
export async function csrPublicKey(pem: string): Promise<Key | string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    return 'is not a PEM certificate request (CSR)';
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') return 'is not for an ECDSA P-256 key (openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256)';
  if (!(await csr.verify())) return 'is not signed by its own key';
  return importSpki(csr.publicKey.rawData);
}

/** The public key of a certificate (renewing a node-born key: the same key, a new validity). */
export const certPublicKey = (pem: string): Promise<Key> => importSpki(new x509.X509Certificate(pem).publicKey.rawData);

/** A P-256 public key as SPKI DER (what bootstrap reads back from the node). Why not, as a string. */
export async function spkiPublicKey(der: Buffer): Promise<Key | string> {
  try {
    return await importSpki(new Uint8Array(der).buffer);
  } catch {
    return 'is not an ECDSA P-256 public key';
  }
}
