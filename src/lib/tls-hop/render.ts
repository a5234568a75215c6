import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { BundleFile } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import type { ResolvedNode } from '../fleet/model.js';
import type { FleetSource } from '../fleet/source.js';
import type { Logger } from '../logger.js';
import { keyProblem, parseChain } from '../secrets/chain.js';
import type { SecretOpener } from '../secrets/opener.js';
import { PRIVATE_MODE } from '../secrets/paths.js';
import type { RenderContext } from '../render/context.js';
import { caProblem } from './hop-tls.js';
import { CA_CERT, RENEW_UNDER_DAYS, daysLeft, hopCertPath, hopKeyPath } from './fleet-ca.js';

/** The forward listener's port when spec.hops.tls gives none. */
export const DEFAULT_HOP_TLS_PORT = 8443;

/** Where the hop files land in a bundle (the agent reads them under <root>/current/). */
export const HOP_CERT_FILE = 'agent/tls/hop.pem';
export const HOP_KEY_FILE = 'agent/tls/hop.key.pem';

export interface HopTls {
  port: number;
  /** The fleet CA, pinned in every forwarding node's agent.json (upstreamCa). */
  caPem: string;
  /** Relays and core nodes being rendered: their certificate and decrypted key, as bundle files. */
  files: Map<string, BundleFile[]>;
  /** Those whose key was born on the node (no key in the fleet): only the certificate ships. */
  keyOnNode: Set<string>;
}

/** Nodes that listen for forwards: relays and the core (hub). */
export const listensForForwards = (n: ResolvedNode) => n.role === 'relay' || n.role === 'core';

/** The host a node's senders put in their upstream URL (what its certificate must name). */
export function hopHost(ctx: Pick<RenderContext, 'model'>, n: ResolvedNode): string {
  if (n.role === 'core') return new URL(ctx.model.fleet.spec.hub.url).hostname.replace(/^\[|\]$/g, '');
  return n.http.address ?? n.address;
}

export function hopUpstream(ctx: RenderContext, relay: ResolvedNode, port: number): string {
  const host = hopHost(ctx, relay);
  return `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}/v1/forward`;
}

const names = (c: X509Certificate, host: string) => (isIP(host) ? c.checkIP(host) : c.checkHost(host)) !== undefined;

/**
 * With spec.hops.tls: the fleet CA and, for each selected relay and core node, its hop
 * certificate (checked: signed by the fleet CA, naming the host its senders dial, its key's
 * own) and its key decrypted (0600, sealed: a saved plan stores the age file, never the key), or
 * no key when the fleet has none for it: the key was born on the node (`ca issue --csr`).
 * A certificate under RENEW_UNDER_DAYS is a warning (`edgectl ca issue NODE --if-due` renews it);
 * an expired one still ships (the node keeps serving what it has; its senders refuse it and keep
 * their spools) and is a louder warning.
 */
export async function loadHopTls(ctx: RenderContext, source: FleetSource, selected: readonly ResolvedNode[], secrets: SecretOpener, log: Logger): Promise<HopTls | undefined> {
  const spec = ctx.model.fleet.spec.hops?.tls;
  if (!spec) return undefined;
  const fail = (message: string, hint: string) => new EdgectlError('EDGECTL_RENDER', message, { hint });
  if (!ctx.model.fleet.spec.hub.url.startsWith('https://')) throw fail(`spec.hops.tls is set but spec.hub.url (${ctx.model.fleet.spec.hub.url}) is not https://`, 'A hop never falls back to plain HTTP: give the hub\'s https:// URL (its certificate from `edgectl ca issue`).');
  const caBytes = await source.readExtra(CA_CERT);
  if (!caBytes) throw fail(`spec.hops.tls is set but the fleet has no CA (${CA_CERT})`, 'Run `edgectl ca init`, then `edgectl ca issue NODE --name HOST` for every relay and core node.');
  const caPem = caBytes.toString('utf8');
  const why = caProblem(caPem);
  if (why) throw fail(`${CA_CERT} ${why}`, 'It is the certificate `edgectl ca init` wrote.');
  const ca = new X509Certificate(caPem);
  const files = new Map<string, BundleFile[]>();
  const keyOnNode = new Set<string>();
  for (const n of selected.filter(listensForForwards)) {
    const certRel = hopCertPath(n.name), keyRel = hopKeyPath(n.name), host = hopHost(ctx, n);
    const hint = `Run \`edgectl ca issue ${n.name} --name ${host}\` and commit tls/hops/${n.name}.*.`;
    const certBytes = await source.readExtra(certRel);
    const armored = await source.readExtra(keyRel);
    if (!certBytes) throw fail(`node ${n.name}: no hop certificate (${certRel})`, hint);
    const chain = parseChain(certBytes);
    if (typeof chain === 'string') throw fail(`node ${n.name}: ${certRel} ${chain}`, hint);
    const leaf = chain[0];
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) throw fail(`node ${n.name}: ${certRel} is not signed by the fleet CA (${CA_CERT})`, hint);
    if (!names(leaf, host)) throw fail(`node ${n.name}: ${certRel} does not name ${host}, the host its senders dial`, hint);
    let keyFile: BundleFile | undefined;
    if (armored) {
      const key = await secrets.open(keyRel, armored, source.root);
      const kp = keyProblem(key, leaf);
      if (kp) throw fail(`node ${n.name}: ${keyRel}, decrypted, ${kp} ${certRel}`, hint);
      keyFile = { path: HOP_KEY_FILE, data: key, mode: PRIVATE_MODE, sealed: { file: keyRel, data: armored } };
    } else {
      keyOnNode.add(n.name);
    }
    const left = daysLeft(leaf);
    if (left < 0) log.warn(`node ${n.name}: its hop certificate ${certRel} has expired: the nodes that forward to it refuse it and keep their spools until it is renewed`, { node: n.name, hint });
    else if (left < RENEW_UNDER_DAYS) log.warn(`node ${n.name}: its hop certificate ${certRel} expires in ${left} days`, { node: n.name, hint: `apply renews it when it can decrypt the fleet CA's key (an age identity); else run \`edgectl ca renew\`, commit tls/hops/ and apply` });
    files.set(n.name, [{ path: HOP_CERT_FILE, data: certBytes, mode: 0o644 }, ...(keyFile ? [keyFile] : [])]);
  }
  return { port: spec.port ?? DEFAULT_HOP_TLS_PORT, caPem, files, keyOnNode };
}
