import https from 'node:https';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EdgectlError, errorMessage } from '../errors.js';
import { loadFleet } from '../fleet/load.js';
import type { AppResource } from '../fleet/model.js';
import type { FleetSpec } from '../fleet/schema.js';
import { keyProblem, parseChain } from '../secrets/chain.js';
import type { SecretOpener } from '../secrets/opener.js';
import { setSecret, writeInFleet } from '../secrets/set.js';
import { silentLogger, type Logger } from '../logger.js';
import { DAY_MS } from './expiry.js';
import { runHook } from './hook.js';

export type AcmeSpec = NonNullable<FleetSpec['acme']>;
export const DEFAULT_RENEW_DAYS = 30;

export interface RenewOptions {
  fleet: string;
  /** Renew what expires within this many days (default: spec.acme.renewDays, else 30). */
  days?: number;
  /** Issue; without it only what is due is listed. */
  issue: boolean;
  secrets: SecretOpener;
  now?: () => number;
  log?: Logger;
}

export interface RenewItem {
  app: string;
  tenant: string;
  domains: string[];
  certificate: string;
  key: string;
  /** Why it is due, or "ok". */
  reason: 'missing' | 'expiring' | 'expired' | 'names' | 'key-mismatch' | 'ok';
  daysLeft?: number;
  outcome: 'renewed' | 'due' | 'skipped' | 'failed';
  /** After a renewal: the new certificate's expiry. */
  notAfter?: string;
  error?: string;
}

export interface RenewResult {
  days: number;
  items: RenewItem[];
  /** Files written (relative to the fleet root): review and commit them. */
  written: string[];
  accountCreated: boolean;
  renewed: number;
  due: number;
  failed: number;
}

type Acme = typeof import('acme-client');

/**
 * `edgectl certs renew`: issues a certificate for every app with tls.acme whose certificate is
 * missing, expires within `days`, does not cover the app's domains or does not go with its key,
 * through DNS-01 answered by the Fleet's hook, on this machine. Each new chain is written at
 * tls.certificate and its key, age-encrypted to the Fleet's recipients, at tls.key (the plaintext
 * key stays in memory); the operator reviews and commits them, and apply ships them like any file.
 */
export async function renewCerts(o: RenewOptions): Promise<RenewResult> {
  const log = o.log ?? silentLogger;
  const now = o.now ?? Date.now;
  const { model, source } = await loadFleet(o.fleet);
  const root = realpathSync(path.resolve(o.fleet));
  const acmeApps = model.apps.filter((a) => a.spec.tls?.acme);
  const spec = model.fleet.spec.acme;
  const days = o.days ?? spec?.renewDays ?? DEFAULT_RENEW_DAYS;
  const result: RenewResult = { days, items: [], written: [], accountCreated: false, renewed: 0, due: 0, failed: 0 };
  if (acmeApps.length === 0) return result;
  if (!spec) throw new EdgectlError('EDGECTL_FLEET_INVALID', 'the fleet has apps with tls.acme but its Fleet has no spec.acme');

  for (const a of acmeApps) {
    const tls = a.spec.tls!;
    const item: RenewItem = { app: a.name, tenant: a.spec.tenant, domains: a.spec.domains, certificate: tls.certificate, key: tls.key, reason: 'ok', outcome: 'skipped' };
    const bytes = await source.readExtra(tls.certificate);
    const chain = bytes ? parseChain(bytes) : undefined;
    if (!chain || typeof chain === 'string') item.reason = 'missing';
    else {
      const leaf = chain[0];
      const left = Date.parse(leaf.validTo) - now();
      item.daysLeft = Math.floor(left / DAY_MS);
      if (left <= 0) item.reason = 'expired';
      else if (left < days * DAY_MS) item.reason = 'expiring';
      else if (a.spec.domains.some((d) => !covers(leaf.subjectAltName ?? '', d))) item.reason = 'names';
      else {
        const armored = await source.readExtra(tls.key);
        const key = armored ? await o.secrets.open(tls.key, armored, source.root) : undefined;
        if (!key || keyProblem(key, leaf)) item.reason = 'key-mismatch';
      }
    }
    if (item.reason !== 'ok') item.outcome = 'due';
    result.items.push(item);
  }
  const due = result.items.filter((i) => i.outcome === 'due');
  result.due = due.length;
  if (!o.issue || due.length === 0) return result;

  const mod = await import('acme-client');
  const acme = (mod.default ?? mod) as Acme;
  acme.setLogger(() => {});
  const caFile = spec.directoryCa;
  if (caFile) {
    const ca = await source.readExtra(caFile);
    if (!ca) throw new EdgectlError('EDGECTL_ACME', `spec.acme.directoryCa ${caFile} is not in the fleet`);
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: ca.toString('latin1') });
  }
  const accountKey = await loadAccountKey(acme, spec, root, source, o.secrets, result, log);
  const client = new acme.Client({ directoryUrl: spec.directory, accountKey, backoffAttempts: 30, backoffMin: 200, backoffMax: 5000 });

  for (const item of due) {
    const app = model.apps.find((a) => a.name === item.app)!;
    try {
      const { chain, key } = await issue(acme, client, spec, root, app, log);
      try {
        // The key first: a chain without its key would fail render's key check, never serve a wrong pair.
        const k = await setSecret({ fleet: root, target: path.join(root, item.key), plaintext: key });
        writeInFleet(root, item.certificate, Buffer.from(chain));
        result.written.push(k.file, item.certificate);
      } finally {
        key.fill(0);
      }
      const leaf = parseChain(Buffer.from(chain));
      item.notAfter = typeof leaf === 'string' ? undefined : new Date(Date.parse(leaf[0].validTo)).toISOString();
      item.outcome = 'renewed';
      result.renewed++;
      log.info(`issued ${item.tenant}/${item.app}`, { domains: item.domains.join(','), notAfter: item.notAfter ?? '' });
    } catch (e) {
      item.outcome = 'failed';
      item.error = errorMessage(e);
      result.failed++;
    }
  }
  result.due = result.items.filter((i) => i.outcome === 'due').length;
  return result;
}

function covers(san: string, domain: string): boolean {
  const names = san.split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  if (names.includes(domain)) return true;
  if (domain.startsWith('*.')) return false;
  const parent = domain.slice(domain.indexOf('.') + 1);
  return names.includes(`*.${parent}`);
}


/** The account key from the fleet (decrypted in memory), or a new one written encrypted before it is used. */
async function loadAccountKey(acme: Acme, spec: AcmeSpec, root: string, source: { readExtra(p: string): Promise<Buffer | undefined>; root: string }, secrets: SecretOpener, result: RenewResult, log: Logger): Promise<Buffer> {
  const armored = await source.readExtra(spec.accountKey);
  if (armored) return secrets.open(spec.accountKey, armored, source.root);
  const key = await acme.crypto.createPrivateEcdsaKey('P-256');
  const w = await setSecret({ fleet: root, target: path.join(root, spec.accountKey), plaintext: key });
  result.written.push(w.file);
  result.accountCreated = true;
  log.info('created an ACME account key', { file: w.file });
  return key;
}

async function issue(acme: Acme, client: InstanceType<Acme['Client']>, spec: AcmeSpec, root: string, app: AppResource, log: Logger): Promise<{ chain: string; key: Buffer }> {
  const domains = app.spec.domains;
  const [key, csr] = await acme.crypto.createCsr({ ...(domains[0].length <= 64 ? { commonName: domains[0] } : {}), altNames: domains }, await acme.crypto.createPrivateEcdsaKey('P-256'));
  const hook = spec.dns01.hook;
  const timeout = spec.dns01.timeoutSeconds;
  const call = (action: 'set' | 'clear', authz: { identifier: { value: string } }, value: string) => {
    const domain = authz.identifier.value;
    return { action, domain, record: `_acme-challenge.${domain}`, value };
  };
  let chain: string;
  try {
    chain = await client.auto({
      csr,
      email: spec.email,
      termsOfServiceAgreed: true,
      challengePriority: ['dns-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== 'dns-01') throw new EdgectlError('EDGECTL_ACME', `the ACME server offers no dns-01 challenge for ${authz.identifier.value}`);
        await runHook(hook, root, call('set', authz, keyAuthorization), timeout);
        if (spec.dns01.propagationSeconds) await sleep(spec.dns01.propagationSeconds * 1000);
      },
      challengeRemoveFn: async (authz, _challenge, keyAuthorization) => {
        try {
          await runHook(hook, root, call('clear', authz, keyAuthorization), timeout);
        } catch (e) {
          log.warn(`could not clear the DNS-01 record: ${errorMessage(e)}`);
        }
      },
    });
  } catch (e) {
    if (e instanceof EdgectlError) throw e;
    throw new EdgectlError('EDGECTL_ACME', `${app.spec.tenant}/${app.name}: the ACME server refused or failed: ${errorMessage(e).replace(/[^\x20-\x7e]/g, '?').slice(0, 300)}`);
  }
  return { chain, key };
}
