import { X509Certificate } from 'node:crypto';
import type { AppResource } from './model.js';
import { report, type RuleContext } from './rule-context.js';
import { MAX_SECRET_FILE_BYTES } from './source-types.js';
import { secretShape } from '../secrets/age.js';
import { parseChain } from '../secrets/chain.js';

/** A certificate this close to expiry is a warning: renew it before nodes serve an expired one. */
const EXPIRY_WARN_DAYS = 14;
const DAY = 86_400_000;

const fileProblem = (ctx: RuleContext, file: string, rule: string, message: string, hint: string, severity: 'error' | 'warning' = 'error') =>
  ctx.out.push({ severity, rule, file, line: 1, column: 1, path: '', message, hint });

/**
 * Secrets: every *.age file of the fleet is checked for its shape without a key (CI validates
 * pull requests without one): an armored age v1 file, encrypted to at least as many X25519
 * recipients as the Fleet lists, no passphrase stanza. And no plaintext private key under tls/.
 */
export function secretRules(ctx: RuleContext): void {
  const files = ctx.m.secretFiles;
  if (!files) return;
  const recipients = ctx.m.recipients ?? [];
  const reEncrypt = 'Encrypt it to the Fleet\'s spec.secrets.recipients with `edgectl secret set FILE` (plaintext from stdin).';
  let told = false;
  for (const [file, bytes] of files) {
    if (bytes.length > MAX_SECRET_FILE_BYTES) {
      fileProblem(ctx, file, 'secret-too-large', `${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes: certificates and secrets are a few KiB`, 'Keep only the certificate chain or the key in the file.');
      continue;
    }
    if (!file.endsWith('.age')) {
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(bytes.toString('latin1'))) {
        fileProblem(ctx, file, 'secret-plaintext', `${file} holds a private key in plaintext`, `Remove it from git history, treat the key as leaked, and commit a new one encrypted: \`edgectl secret set ${file}.age < key.pem\`.`);
      }
      continue;
    }
    const shape = secretShape(bytes);
    if (typeof shape === 'string') {
      fileProblem(ctx, file, 'secret-not-age', `${file} ${shape}`, reEncrypt);
      continue;
    }
    if (shape.others.length > 0) fileProblem(ctx, file, 'secret-recipients', `${file} has ${shape.others.join(', ')} stanza(s): only X25519 recipients (age1…) can decrypt it on CI and the operators' machines`, reEncrypt);
    else if (ctx.m.partial.has('Fleet')) continue; // the recipients are unknown: its own errors are shown
    else if (recipients.length === 0) {
      if (!told) fileProblem(ctx, file, 'secret-no-recipients', `the fleet has secrets (${file}) but its Fleet document lists no spec.secrets.recipients`, 'List the age public keys of the operators and CI who may decrypt them in the Fleet\'s spec.secrets.recipients.');
      told = true;
    } else if (shape.x25519 < recipients.length) {
      fileProblem(ctx, file, 'secret-recipients', `${file} is encrypted to ${shape.x25519} recipient(s), the Fleet lists ${recipients.length}`, `A recipient added since it was written cannot decrypt it. ${reEncrypt}`);
    }
  }
}

/**
 * Apps' tls: the certificate is a PEM chain (leaf first, each signed by the next), covers every
 * domain of the app and is not expired; the key is an age file. `nginx -t` on the node checks the
 * rest with the decrypted key; render checks that key and certificate belong together.
 */
export function tlsRules(ctx: RuleContext, now = Date.now()): void {
  // nginx cannot serve one port both plain and with ssl: a TLS app needs https.port apart from http.port.
  if (ctx.m.apps.some((a) => a.spec.tls)) {
    for (const n of ctx.m.nodes) {
      const r = ctx.resolved.get(n.name);
      if (r && r.role === 'edge' && r.https.port === r.http.port) report(ctx, n, n.spec.https?.port !== undefined ? ['spec', 'https', 'port'] : ['spec'], 'https-port-conflict', `node "${n.name}" would serve HTTP and HTTPS on the same port ${r.http.port}`, 'Give the node (or the Fleet\'s defaults) an https.port other than its http.port.');
    }
  }
  for (const a of ctx.m.apps) {
    const tls = a.spec.tls;
    if (!tls) continue;
    const files = ctx.m.secretFiles;
    if (!files) continue; // a source built by hand: render checks what it reads
    const cert = files.get(tls.certificate);
    if (tls.acme && !ctx.m.acme && !ctx.m.partial.has('Fleet')) report(ctx, a, ['spec', 'tls', 'acme'], 'tls-acme-no-account', `app ${a.name} asks for an ACME certificate but the Fleet has no spec.acme`, 'Give the Fleet a spec.acme (directory, accountKey, dns01.hook): see docs/tls.md.');
    if (!cert && tls.acme) {
      // Not issued yet: render serves the app over HTTP only until `certs renew` commits its
      // certificate, and plan says so. No warning here: `validate --strict` in CI must pass the
      // pull request that adds the app, since the certificate is issued after it is merged.
      //
      // A key without its chain (a renewal cut short between the two writes): a warning, since as an
      // error the fleet would be invalid and certs renew, which issues both again, could not run.
      if (files.has(tls.key)) report(ctx, a, ['spec', 'tls', 'certificate'], 'tls-file-missing', `certificate ${tls.certificate} is not in the fleet, but its key ${tls.key} is: the app is served over HTTP only`, 'Run `edgectl certs renew` to issue both again.', 'warning');
      continue;
    }
    if (!cert) {
      report(ctx, a, ['spec', 'tls', 'certificate'], 'tls-file-missing', `certificate ${tls.certificate} is not in the fleet (or is not a regular file)`, 'Commit the PEM chain (leaf certificate first) at that path.');
    } else checkCertificate(ctx, a, tls.certificate, cert, now);
    if (!files.has(tls.key)) report(ctx, a, ['spec', 'tls', 'key'], 'tls-file-missing', `key ${tls.key} is not in the fleet (or is not a regular file)`, `Encrypt the key to the fleet's recipients: \`edgectl secret set ${tls.key} < key.pem\`.`);
  }
}

function checkCertificate(ctx: RuleContext, a: AppResource, file: string, bytes: Buffer, now: number): void {
  const at = ['spec', 'tls', 'certificate'];
  if (bytes.length > MAX_SECRET_FILE_BYTES) return; // secret-too-large
  const chain = parseChain(bytes);
  if (typeof chain === 'string') {
    report(ctx, a, at, 'tls-certificate', `${file}: ${chain}`, 'The file must hold PEM CERTIFICATE blocks only, the leaf (the app\'s certificate) first, then its intermediates.');
    return;
  }
  const leaf = chain[0];
  // An ACME app's certificate is certs renew's to replace: a domain added to the app, or an expired
  // certificate, is a warning (an error would make the fleet invalid, and renew could not run).
  const acme = a.spec.tls?.acme === true;
  const renew = 'Run `edgectl certs renew`, review and commit what it writes, then apply.';
  const bad = acme ? 'warning' : 'error';
  for (const d of a.spec.domains) {
    if (!covers(leaf, d)) report(ctx, a, at, 'tls-certificate-names', `${file} does not cover the app's domain "${d}" (its names: ${sanList(leaf).join(', ') || 'none'})`, acme ? renew : 'Use a certificate whose subjectAltName lists every domain of the app (a wildcard domain needs the same wildcard in the certificate).', bad);
  }
  const end = Date.parse(leaf.validTo);
  if (end <= now) report(ctx, a, at, 'tls-certificate-expired', `${file} expired on ${new Date(end).toISOString()}`, acme ? renew : 'Commit a renewed certificate.', bad);
  else if (end - now < EXPIRY_WARN_DAYS * DAY) report(ctx, a, at, 'tls-certificate-expiring', `${file} expires in ${Math.floor((end - now) / DAY)} day(s) (${new Date(end).toISOString()})`, acme ? renew : 'Renew it and commit the new chain before nodes serve an expired certificate.', 'warning');
  if (Date.parse(leaf.validFrom) > now) report(ctx, a, at, 'tls-certificate-not-yet-valid', `${file} is not valid before ${new Date(Date.parse(leaf.validFrom)).toISOString()}`, 'Check the certificate and the clock of the machine that issued it.', bad);
}

function sanList(c: X509Certificate): string[] {
  return (c.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
}

function covers(c: X509Certificate, domain: string): boolean {
  // A wildcard domain is served for any name under it: only the same wildcard in the certificate covers that.
  if (domain.startsWith('*.')) return sanList(c).includes(domain);
  return c.checkHost(domain) !== undefined;
}
