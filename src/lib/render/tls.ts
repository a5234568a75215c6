import { EdgectlError } from '../errors.js';
import type { AppResource } from '../fleet/model.js';
import type { FleetSource } from '../fleet/source.js';
import type { BundleFile } from '../bundle/manifest.js';
import { hasOcsp, keyProblem, parseChain } from '../secrets/chain.js';
import { secretOpener, type SecretOpener } from '../secrets/opener.js';
import { PRIVATE_MODE } from '../secrets/paths.js';
import { appId } from './context.js';
import { DEMO_IDENTITY_FILE } from '../secrets/identity.js';
import { silentLogger, type Logger } from '../logger.js';

/** What an app's server needs of its certificate: paths relative to nginx.conf, and the choices. */
export interface TlsView {
  chain: string;
  key: string;
  redirect: boolean;
  hsts?: { maxAge: number; includeSubDomains: boolean };
  ocsp: boolean;
}

export interface AppTls {
  view: TlsView;
  files: BundleFile[];
}

/**
 * Every TLS app's certificate and decrypted key, as bundle files under nginx/tls/<tenant>.<app>/
 * (everything nginx loads lives under nginx/, so a new key is a new config id and a reload). The
 * key is 0600 and carries its age file (`sealed`): a saved plan stores that, never the key.
 */
export async function loadAppTls(source: FleetSource, apps: AppResource[], secrets: SecretOpener = secretOpener({ env: process.env }), log: Logger = silentLogger): Promise<Map<string, AppTls>> {
  const out = new Map<string, AppTls>();
  for (const app of apps) {
    const tls = app.spec.tls;
    if (!tls) continue;
    const cert = await source.readExtra(tls.certificate);
    // An ACME app not issued yet: served over HTTP only until `certs renew` (plan warns, render is quiet).
    if (!cert && tls.acme) continue;
    if (!cert) throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: cannot read its certificate ${tls.certificate}`);
    const chain = parseChain(cert);
    if (typeof chain === 'string') throw new EdgectlError('EDGECTL_FLEET_INVALID', `app ${app.name}: ${tls.certificate} ${chain}`);
    const armored = await source.readExtra(tls.key);
    if (!armored) throw new EdgectlError('EDGECTL_SECRET', `app ${app.name}: cannot read its key ${tls.key}`);
    const key = await secrets.open(tls.key, armored, source.root);
    const why = keyProblem(key, chain[0]);
    if (why) throw new EdgectlError('EDGECTL_SECRET', `app ${app.name}: ${tls.key}, decrypted, ${why} ${tls.certificate}`, { hint: 'Commit the key that belongs to the certificate (`edgectl secret set`), or the certificate issued for that key.' });
    const id = appId(app);
    const dir = `tls/${id}`;
    const hsts = tls.hsts ? { maxAge: tls.hsts.maxAge, includeSubDomains: tls.hsts.includeSubDomains ?? false } : undefined;
    out.set(app.name, {
      view: { chain: `${dir}/chain.pem`, key: `${dir}/key.pem`, redirect: tls.redirect ?? true, ocsp: hasOcsp(chain[0]), ...(hsts ? { hsts } : {}) },
      files: [
        { path: `nginx/${dir}/chain.pem`, data: cert, mode: 0o644 },
        { path: `nginx/${dir}/key.pem`, data: key, mode: PRIVATE_MODE, sealed: { file: tls.key, data: armored } },
      ],
    });
  }
  if (secrets.usedDemo) log.warn(`decrypted the fleet's secrets with its demo identity (${DEMO_IDENTITY_FILE}): demo only, what is encrypted to it is public`);
  return out;
}
