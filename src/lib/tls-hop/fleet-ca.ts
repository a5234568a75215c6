import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { EdgectlError } from '../errors.js';
import { RE } from '../fleet/values.js';
import { encryptTo } from '../secrets/age.js';
import type { SecretOpener } from '../secrets/opener.js';
import { fleetRecipients, writeInFleet } from '../secrets/set.js';

/**
 * Where the fleet keeps its CA and the hop certificates, relative to the fleet root. Under tls/
 * (never sites/, whose files are served); keys only as age files, to the Fleet's recipients.
 */
export const CA_CERT = 'tls/fleet-ca.pem';
export const CA_KEY = 'tls/fleet-ca.key.age';
export const hopCertPath = (node: string) => `tls/hops/${node}.pem`;
export const hopKeyPath = (node: string) => `tls/hops/${node}.key.age`;

/** CA: 10 years. Hop certificates: 1 year, renewed by `ca issue` (or apply) under 30 days left. */
export const CA_DAYS = 3650;
export const HOP_DAYS = 365;
export const RENEW_UNDER_DAYS = 30;

const err = (message: string, hint: string) => new EdgectlError('EDGECTL_SECRET', message, { hint });

function fleetRoot(fleet: string): string {
  try {
    return realpathSync(path.resolve(fleet));
  } catch {
    throw err(`the fleet ${fleet} does not exist`, 'Pass --fleet DIR, the fleet repo.');
  }
}

async function writeSecretAndCert(root: string, certRel: string, keyRel: string, certPem: string, keyPem: string): Promise<number> {
  const recipients = await fleetRecipients(root);
  const plain = Buffer.from(keyPem);
  let armored: Buffer;
  try {
    armored = await encryptTo(recipients, plain);
  } finally {
    plain.fill(0);
  }
  // The key first: a cert without its key would be a fleet that cannot render.
  writeInFleet(root, keyRel, armored);
  writeInFleet(root, certRel, Buffer.from(certPem));
  return recipients.length;
}

export interface CaInit { cert: string; key: string; recipients: number; notAfter: string; sha256: string }

/** `edgectl ca init`: a new fleet CA. Refuses to replace one (every hop certificate hangs on it). */
export async function initFleetCa(o: { fleet: string; name?: string; now?: Date }): Promise<CaInit> {
  const root = fleetRoot(o.fleet);
  if (existsSync(path.join(root, CA_CERT)) || existsSync(path.join(root, CA_KEY))) {
    throw err(`the fleet already has a CA (${CA_CERT}, ${CA_KEY})`, 'A new CA would make every hop certificate untrusted at once. Remove both files by hand (and reissue every hop certificate) if that is what you want.');
  }
  const { createCa } = await import('./x509.js');
  const ca = await createCa({ name: o.name ?? `edgectl fleet CA ${path.basename(root)}`, days: CA_DAYS, now: o.now });
  try {
    const recipients = await writeSecretAndCert(root, CA_CERT, CA_KEY, ca.certPem, ca.keyPem);
    const c = new X509Certificate(ca.certPem);
    return { cert: CA_CERT, key: CA_KEY, recipients, notAfter: new Date(c.validTo).toISOString(), sha256: c.fingerprint256.replace(/:/g, '').toLowerCase() };
  } finally {
    ca.keyPem = '';
  }
}

/** keyOn: where the certificate's key lives: `fleet` (tls/hops/NODE.key.age, render ships it) or `node` (born there, never seen here). */
export interface HopIssue { node: string; cert: string; key: string | null; keyOn: 'fleet' | 'node'; names: string[]; notAfter: string; issued: boolean; daysLeft: number }

/** Where a node-born hop key lives on the node (outside releases; render points forwardTls.keyFile here). */
export const nodeHopKeyFile = (root: string) => `${root.replace(/\/+$/, '')}/secrets/hop-key.pem`;

/** Days from now to a certificate's notAfter (negative when expired). */
/** The DNS names and IP addresses a certificate's subjectAltName lists, in its order. */
export function sanNames(c: Pick<X509Certificate, 'subjectAltName'>): string[] {
  return (c.subjectAltName ?? '').split(', ').filter((x) => /^(DNS|IP Address):/.test(x)).map((x) => x.replace(/^(DNS|IP Address):/, ''));
}

export function daysLeft(cert: X509Certificate, now = Date.now()): number {
  return Math.floor((Date.parse(cert.validTo) - now) / 86_400_000);
}

/**
 * `edgectl ca issue NODE`: a server certificate for the node's forward listener, signed by the
 * fleet CA (decrypted here, in memory), for `names`. With `ifDue`, an existing certificate that
 * names all of them with more than RENEW_UNDER_DAYS left is kept (nothing written), and one that
 * is only due is renewed with the names it has: what apply and a cron job call.
 */
export async function issueHopCert(o: {
  fleet: string; node: string; names: string[]; secrets: SecretOpener; ifDue?: boolean; days?: number; now?: Date; notBefore?: Date; csr?: string;
  /** A node-born key's public half (SPKI DER), its possession already proven to the caller (bootstrap: hop-key.ts). */
  publicKey?: Buffer;
  /** Renew for the key the current certificate is for (node's or fleet's): the key file is left as it is (apply's renewal). */
  sameKey?: boolean;
}): Promise<HopIssue> {
  const root = fleetRoot(o.fleet);
  if (!RE.dnsLabel.test(o.node)) throw err(`${JSON.stringify(o.node)} is not a node name`, 'Give the node\'s name as the fleet spells it.');
  let names = [...new Set(o.names)];
  if (names.length === 0) throw err(`no name for ${o.node}'s certificate`, 'Give --name with each host name or IP address its next hops use in their upstream URL.');
  for (const n of names) {
    if (!/^(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}$|^[0-9a-fA-F:.]+$/.test(n)) throw err(`--name ${JSON.stringify(n)} is not a host name or an IP address`, 'Names go into the certificate as DNS or IP subject alternative names.');
  }
  const certRel = hopCertPath(o.node), keyRel = hopKeyPath(o.node);
  const now = (o.now ?? new Date()).getTime();
  const hasCert = existsSync(path.join(root, certRel)), hasKey = existsSync(path.join(root, keyRel));
  // A certificate without a key in the fleet is for a key born on the node: renewed for the same key.
  const keyOn: 'fleet' | 'node' = o.csr !== undefined || o.publicKey !== undefined || (hasCert && !hasKey) ? 'node' : 'fleet';
  const oldPem = hasCert ? readFileSync(path.join(root, certRel), 'utf8') : undefined;
  if (o.sameKey && !oldPem) throw err(`${o.node} has no hop certificate (${certRel}) to renew`, `Run \`edgectl ca issue ${o.node}\` (or bootstrap it).`);
  if (o.ifDue && oldPem && !o.csr && !o.publicKey) {
    const old = new X509Certificate(oldPem);
    const left = daysLeft(old, now);
    const oldNames = sanNames(old);
    // Covered: every name asked for is in it (a name added by hand, like a local-mode address, stays).
    const covered = names.every((n) => oldNames.includes(n));
    if (covered && left > RENEW_UNDER_DAYS) return { node: o.node, cert: certRel, key: keyOn === 'fleet' ? keyRel : null, keyOn, names: oldNames, notAfter: new Date(old.validTo).toISOString(), issued: false, daysLeft: left };
    // Only due: renewed with the names it has.
    if (covered) names = oldNames;
  }
  if (!existsSync(path.join(root, CA_CERT)) || !existsSync(path.join(root, CA_KEY))) throw err(`the fleet has no CA (${CA_CERT})`, 'Run `edgectl ca init` first.');
  const caCertPem = readFileSync(path.join(root, CA_CERT), 'utf8');
  const caKey = await o.secrets.open(CA_KEY, readFileSync(path.join(root, CA_KEY)), root);
  const x = await import('./x509.js');
  const ca = { certPem: caCertPem, keyPem: caKey.toString('utf8') };
  const opts = { cn: o.node, names, days: o.days ?? HOP_DAYS, now: new Date(now), notBefore: o.notBefore };
  try {
    let certPem: string;
    if (o.sameKey) {
      // The same public key, a new validity: the key file (the fleet's age file, or the node's) stays as it is.
      certPem = await x.signServerCert(ca, await x.certPublicKey(oldPem!), opts);
      writeInFleet(root, certRel, Buffer.from(certPem));
    } else if (keyOn === 'node') {
      let pub;
      if (o.publicKey !== undefined) {
        pub = await x.spkiPublicKey(o.publicKey);
        if (typeof pub === 'string') throw err(`the public key ${o.node} answered ${pub}`, 'The node makes its hop key with its own Node.js at bootstrap (ECDSA P-256).');
      } else if (o.csr !== undefined) {
        pub = await x.csrPublicKey(o.csr);
        if (typeof pub === 'string') throw err(`the request for ${o.node} ${pub}`, `Make it on the node: openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${nodeHopKeyFile('ROOT')} -subj /CN=${o.node} -out hop.csr`);
      } else {
        pub = await x.certPublicKey(oldPem!);
      }
      certPem = await x.signServerCert(ca, pub, opts);
      writeInFleet(root, certRel, Buffer.from(certPem));
      // A key of the fleet's from before would be shipped beside a certificate it does not match.
      if (hasKey) unlinkSync(path.join(root, keyRel));
    } else {
      const hop = await x.issueServerCert(ca, opts);
      await writeSecretAndCert(root, certRel, keyRel, hop.certPem, hop.keyPem);
      hop.keyPem = '';
      certPem = hop.certPem;
    }
    const c = new X509Certificate(certPem);
    return { node: o.node, cert: certRel, key: keyOn === 'fleet' ? keyRel : null, keyOn, names, notAfter: new Date(c.validTo).toISOString(), issued: true, daysLeft: daysLeft(c, now) };
  } finally {
    ca.keyPem = '';
  }
}
