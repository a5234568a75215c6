import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, isEdgectlError } from '../errors.js';
import type { FleetModel, ResolvedNode } from '../fleet/model.js';
import type { SecretOpener } from '../secrets/opener.js';
import { CA_CERT, daysLeft, hopCertPath, hopKeyPath, issueHopCert, RENEW_UNDER_DAYS, sanNames } from '../tls-hop/fleet-ca.js';
import { hopHost, listensForForwards } from '../tls-hop/render.js';

/**
 * Bootstrap's half of a relay's or core node's hop certificate (issue 17): the node made its key
 * (hop-key.ts), edgectl signs its public half with the fleet CA (decrypted here, in memory, as
 * `ca issue` does) and writes tls/hops/NODE.pem into the fleet: a change to review and commit.
 */

/** What bootstrap did about a node's hop certificate (BootstrapResult.hopCert). */
export interface HopCertResult {
  cert: string;
  /** issued: a certificate was written; kept: the fleet's is valid for this key (or the fleet holds the key) and not due. */
  outcome: 'issued' | 'kept';
  keyOn: 'node' | 'fleet';
  notAfter: string;
  daysLeft: number;
}

/** Whether bootstrap makes a hop key on this node: it serves the TLS forward listener and the fleet has a CA to sign it. */
export function wantsHopKey(fleetRoot: string, n: ResolvedNode): boolean {
  return listensForForwards(n) && existsSync(path.join(fleetRoot, CA_CERT));
}

const sameNames = (c: X509Certificate, names: string[]) => sanNames(c).sort().join(',') === [...names].sort().join(',');

/**
 * The fleet's certificate for the node is kept when it names the node's host, has more than
 * RENEW_UNDER_DAYS left, and is for the node's key (or for a key the fleet holds, which the
 * operator chose with `ca issue`: bootstrap does not replace a working pair). Otherwise a new one
 * for the node's key; an older NODE.key.age is removed (issueHopCert).
 */
export async function recordHopCert(o: { fleetRoot: string; model: FleetModel; node: ResolvedNode; spki: Buffer; secrets: SecretOpener; now?: Date }): Promise<HopCertResult> {
  const names = [hopHost({ model: o.model }, o.node)];
  const root = o.fleetRoot, certRel = hopCertPath(o.node.name);
  const now = (o.now ?? new Date()).getTime();
  if (existsSync(path.join(root, certRel))) {
    let old: X509Certificate | undefined;
    try {
      old = new X509Certificate(readFileSync(path.join(root, certRel)));
    } catch {
      old = undefined; // not a certificate: issued again
    }
    if (old) {
      const left = daysLeft(old, now);
      const fleetKey = existsSync(path.join(root, hopKeyPath(o.node.name)));
      const mine = old.publicKey.export({ format: 'der', type: 'spki' }).equals(o.spki);
      if ((mine || fleetKey) && sameNames(old, names) && left > RENEW_UNDER_DAYS) {
        return { cert: certRel, outcome: 'kept', keyOn: mine ? 'node' : 'fleet', notAfter: new Date(old.validTo).toISOString(), daysLeft: left };
      }
    }
  }
  const r = await issueHopCert({ fleet: root, node: o.node.name, names, secrets: o.secrets, publicKey: o.spki, now: o.now });
  return { cert: r.cert, outcome: 'issued', keyOn: 'node', notAfter: r.notAfter, daysLeft: r.daysLeft };
}

/** An error as one line for BootstrapResult.hopCertError (its hint appended). */
export const hopCertErrorText = (e: unknown) => errorMessage(e) + (isEdgectlError(e) && e.hint ? ` (${e.hint})` : '');
