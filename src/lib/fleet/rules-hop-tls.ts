import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { report, type RuleContext } from './rule-context.js';
import { MAX_SECRET_FILE_BYTES } from './source-types.js';
import { parseChain } from '../secrets/chain.js';
import { caProblem } from '../tls-hop/hop-tls.js';
import { CA_CERT, CA_KEY, daysLeft, hopCertPath, hopKeyPath, RENEW_UNDER_DAYS } from '../tls-hop/fleet-ca.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

const fileProblem = (ctx: RuleContext, file: string, rule: string, message: string, hint: string, severity: 'error' | 'warning' = 'error') =>
  ctx.out.push({ severity, rule, file, line: 1, column: 1, path: '', message, hint });

/**
 * spec.hops.tls without decrypting anything (CI validates pull requests without a key): the fleet
 * CA's certificate (a CA, not expired, its key committed), and every relay's and core node's hop
 * certificate: PEM, signed by the fleet CA in the repo, naming the host its senders dial (a relay's
 * http.address or address, a core node's spec.hub.url host), for serverAuth (errors: render
 * refuses those too), and valid: missing, expired, not yet valid or within RENEW_UNDER_DAYS are
 * warnings (bootstrap, apply and `ca renew` fix them, and need a valid fleet to run). A
 * hop certificate or key of no relay or core node is a warning. The key itself is render's to check
 * (decrypted) or the node's (born there: the agent refuses a pair that does not match at start).
 */
export function hopTlsRules(ctx: RuleContext, now = Date.now()): void {
  const files = ctx.m.secretFiles;
  if (!files || !ctx.m.hopTls) return;
  const caBytes = files.get(CA_CERT);
  let ca: X509Certificate | undefined;
  if (!caBytes) {
    fileProblem(ctx, CA_CERT, 'hop-ca-missing', `spec.hops.tls is set but the fleet has no CA (${CA_CERT})`, 'Run `edgectl ca init`, then bootstrap (or `edgectl ca issue`) every relay and core node, and commit tls/.');
  } else if (caBytes.length <= MAX_SECRET_FILE_BYTES) {
    const why = caProblem(caBytes.toString('utf8'));
    if (why) fileProblem(ctx, CA_CERT, 'hop-ca', `${CA_CERT} ${why}`, 'It is the certificate `edgectl ca init` wrote: restore it from git.');
    else {
      ca = new X509Certificate(caBytes);
      if (daysLeft(ca, now) < 0) fileProblem(ctx, CA_CERT, 'hop-ca-expired', `the fleet CA ${CA_CERT} expired on ${new Date(ca.validTo).toISOString()}`, 'Every hop certificate hangs on it: make a new CA and issue every hop certificate again (docs/tls.md, Known limits).');
      if (!files.has(CA_KEY)) fileProblem(ctx, CA_KEY, 'hop-ca-key-missing', `the fleet CA's key ${CA_KEY} is not in the fleet: no hop certificate can be issued or renewed`, 'Commit the age file `edgectl ca init` wrote next to the certificate.', 'warning');
    }
  }
  const listeners = new Set<string>();
  for (const r of ctx.resolved.values()) {
    if (r.role !== 'relay' && r.role !== 'core') continue;
    listeners.add(r.name);
    const doc = ctx.nodes.get(r.name);
    const file = hopCertPath(r.name);
    const host = r.role === 'core' ? hubHost(ctx.m.hubUrl) : r.http.address ?? r.address;
    const issue = `Run \`edgectl bootstrap ${r.name}\` (its key made on the node) or \`edgectl ca issue ${r.name}${host ? ` --name ${host}` : ''}\`, and commit ${file}.`;
    const bytes = files.get(file);
    if (!bytes) {
      // A warning: bootstrap, which issues it, needs a valid fleet (render refuses the node until it is there).
      if (doc) report(ctx, doc, ['spec', 'role'], 'hop-certificate-missing', `node "${r.name}" serves the TLS forward listener (spec.hops.tls) but has no hop certificate ${file}: render refuses it until it has one`, issue, 'warning');
      continue;
    }
    if (bytes.length > MAX_SECRET_FILE_BYTES) continue; // secret-too-large
    const chain = parseChain(bytes);
    if (typeof chain === 'string') {
      fileProblem(ctx, file, 'hop-certificate', `${file} (node ${r.name}) ${chain}`, issue);
      continue;
    }
    const leaf = chain[0];
    if (ca && (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey))) fileProblem(ctx, file, 'hop-certificate-ca', `${file} (node ${r.name}) is not signed by the fleet CA ${CA_CERT}: its senders would refuse it`, issue);
    if (host && (isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host)) === undefined) fileProblem(ctx, file, 'hop-certificate-names', `${file} (node ${r.name}) does not name ${host}, the host its senders dial (its names: ${leaf.subjectAltName ?? 'none'})`, issue);
    if (Array.isArray(leaf.keyUsage) && !leaf.keyUsage.includes(SERVER_AUTH)) fileProblem(ctx, file, 'hop-certificate-usage', `${file} (node ${r.name}) is not for serverAuth`, issue);
    const left = daysLeft(leaf, now);
    // Expired or not yet valid: warnings (an error would make the fleet invalid, and apply and
    // `ca renew`, which renew it, could not run); `validate --strict` fails on them. Render ships
    // it as it is (the node keeps serving; its senders refuse it and keep their spools).
    if (Date.parse(leaf.validFrom) > now) fileProblem(ctx, file, 'hop-certificate-not-yet-valid', `${file} (node ${r.name}) is not valid before ${new Date(leaf.validFrom).toISOString()}: its senders refuse it`, 'Check the clock of the machine that issued it, and issue it again.', 'warning');
    if (left < 0) fileProblem(ctx, file, 'hop-certificate-expired', `${file} (node ${r.name}) expired on ${new Date(leaf.validTo).toISOString()}: its senders refuse it and keep their spools`, `apply with an age identity renews it, or run \`edgectl ca renew\` and commit ${file}.`, 'warning');
    else if (left <= RENEW_UNDER_DAYS) fileProblem(ctx, file, 'hop-certificate-expiring', `${file} (node ${r.name}) expires in ${left} day(s) (${new Date(leaf.validTo).toISOString()})`, `apply with an age identity renews it (same key), or run \`edgectl ca renew\` and commit ${file}.`, 'warning');
  }
  for (const f of files.keys()) {
    const m = /^tls\/hops\/([^/]+?)(\.pem|\.key\.age)$/.exec(f);
    if (!m || listeners.has(m[1]) || ctx.m.invalid.has(`Node/${m[1]}`)) continue;
    fileProblem(ctx, f, 'hop-certificate-unused', `${f} is for "${m[1]}", which is no relay or core node of the fleet`, 'Remove it (a node that is gone, or renamed: issue its certificate under its new name).', 'warning');
  }
  // A key in the fleet without its certificate (a renewal cut short): render cannot ship it.
  for (const name of listeners) if (files.has(hopKeyPath(name)) && !files.has(hopCertPath(name))) fileProblem(ctx, hopKeyPath(name), 'hop-key-without-certificate', `${hopKeyPath(name)} has no certificate ${hopCertPath(name)} beside it`, `Run \`edgectl ca issue ${name}\` to issue both again.`, 'warning');
}

function hubHost(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}
