import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { errorMessage, isEdgectlError } from '../errors.js';
import type { LoadedFleet } from '../fleet/load.js';
import { resolvedNodes, type FleetModel } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { selectNodes } from '../nodes/select.js';
import type { SecretOpener } from '../secrets/opener.js';
import { CA_KEY, daysLeft, hopCertPath, issueHopCert, RENEW_UNDER_DAYS, sanNames } from './fleet-ca.js';
import { hopHost, listensForForwards } from './render.js';

/**
 * Hop certificates renewed by apply (issue 17): a selected relay's or core node's certificate
 * with RENEW_UNDER_DAYS or fewer left (the rule of `ca renew`) is signed again for the same
 * public key and names when the fleet CA's key can be decrypted, written into the fleet's working tree and
 * rendered into this apply's release. Plan only says what apply would do. Nothing is written when
 * the fleet is read at a git revision (--rev) or the key cannot be decrypted: a warning, and the
 * old certificate ships (a missing or misnamed one is render's error, as before).
 */
export interface HopRenewal {
  node: string;
  cert: string;
  /** Days left on the certificate in the fleet before this run. */
  daysLeft: number;
  notAfter: string;
  /** renewed: written and shipped by this apply; due: plan: apply renews it; not-renewed: see reason. */
  outcome: 'renewed' | 'due' | 'not-renewed';
  /** The renewed certificate's end (renewed). */
  renewedUntil?: string;
  reason?: string;
}

export interface HopRenewOptions {
  /** plan: nothing is written (only whether apply could renew is checked, by decrypting the CA key in memory). */
  mode: 'plan' | 'apply';
  nodes?: string[];
  selector?: Record<string, string>;
  secrets: SecretOpener;
  log: Logger;
  now?: Date;
}

/** "expires in N days", "expired N day(s) ago": what plan and apply say of a hop certificate. */
export const expiresText = (left: number) => (left < 0 ? `expired ${-left} day(s) ago` : `expires in ${left} days`);

const hint = (node: string) => `run \`edgectl ca renew\` (or \`edgectl ca issue ${node} --if-due\`), commit tls/hops/ and apply`;
const why = (e: unknown) => errorMessage(e) + (isEdgectlError(e) && e.hint ? ` (${e.hint})` : '');

/** model: the fleet as it renders (local mode applied): the names a certificate must carry are its. */
export async function renewDueHopCerts(loaded: LoadedFleet, model: FleetModel, o: HopRenewOptions): Promise<HopRenewal[]> {
  if (!model.fleet.spec.hops?.tls) return [];
  const ctx = { model };
  let selected;
  try {
    selected = selectNodes([...resolvedNodes(model).values()], { nodes: o.nodes, selector: o.selector }).filter(listensForForwards);
  } catch {
    return []; // an unknown node: render says so
  }
  const { source } = loaded;
  const now = (o.now ?? new Date()).getTime();
  const out: HopRenewal[] = [];
  let caOpen: Promise<string | undefined> | undefined;
  for (const n of selected) {
    const cert = hopCertPath(n.name), host = hopHost(ctx, n);
    const bytes = await source.readExtra(cert);
    if (!bytes) continue;
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(bytes);
    } catch {
      continue; // render refuses it, naming the file
    }
    if ((isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host)) === undefined) continue; // misnamed: render's error, `ca renew`'s to fix
    const left = daysLeft(leaf, now);
    if (left > RENEW_UNDER_DAYS) continue;
    const r: HopRenewal = { node: n.name, cert, daysLeft: left, notAfter: new Date(leaf.validTo).toISOString(), outcome: 'not-renewed' };
    out.push(r);
    const until = expiresText(left);
    if (source.from === 'rev') {
      r.reason = 'the fleet is read at a git revision: nothing is written to the working tree';
    } else if (o.mode === 'apply' && model.dirty) {
      // Its release would be in no commit anyway (refused without --allow-dirty): the renewal waits for a clean tree.
      r.reason = 'the fleet has uncommitted changes: commit them, then apply renews it';
    } else if (o.mode === 'plan') {
      // Whether apply could: the CA key decrypted in memory once, never printed. (Not zeroed here: the
      // opener caches the plaintext for whoever opens the same file next in this process.)
      caOpen ??= source.readExtra(CA_KEY).then(async (armored) => {
        if (!armored) return `the fleet has no ${CA_KEY}`;
        await o.secrets.open(CA_KEY, armored, source.root);
        return undefined;
      }).catch(why);
      const cannot = await caOpen;
      if (cannot) r.reason = cannot;
      else r.outcome = 'due';
    } else {
      try {
        // Its names kept (a local-mode or extra --name stays), the host its senders dial among them.
        const names = [...new Set([...sanNames(leaf), host])];
        const issued = await issueHopCert({ fleet: source.root, node: n.name, names, secrets: o.secrets, sameKey: true, ifDue: true, now: o.now });
        r.outcome = 'renewed';
        r.renewedUntil = issued.notAfter;
      } catch (e) {
        r.reason = why(e);
      }
    }
    // renewed and due are the commands' to print (apply, plan); what is left to the operator is a warning here.
    if (r.outcome === 'not-renewed') o.log.warn(`hop certificate of ${n.name} ${until}; run edgectl ca renew (not renewed here: ${r.reason})`, { node: n.name, hint: hint(n.name) });
  }
  return out;
}
