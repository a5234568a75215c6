import { EdgectlError, errorMessage, isEdgectlError } from '../errors.js';
import type { FleetModel } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { createConnector, type ConnectorOptions } from './connect.js';

export interface TrustResult {
  node: string;
  /** recorded: added to the fleet's known_hosts now; known/pinned: already trusted, nothing written. */
  status: 'recorded' | 'known' | 'pinned' | 'failed';
  fingerprint?: string;
  keyLine?: string;
  source?: string;
  error?: { code: string; message: string };
  /** Set when the key was handled but the connection then failed (e.g. authentication). */
  warning?: string;
}

/**
 * `edgectl trust`: connects to each node (through its relays, which must already be trusted or
 * be listed too), and records a first-seen host key in the fleet's known_hosts. A key that
 * differs from one already recorded anywhere is refused, never overwritten.
 */
export async function trustNodes(o: { model: FleetModel; fleetRoot: string; nodes: string[]; identity?: string[]; logger?: Logger; connectTimeoutMs?: number } & Pick<ConnectorOptions, 'userKnownHosts' | 'sshConfig' | 'agentSocket'>): Promise<TrustResult[]> {
  const known = new Set(o.model.nodes.map((n) => n.name));
  const unknown = o.nodes.filter((n) => !known.has(n));
  if (unknown.length) throw new EdgectlError('EDGECTL_USAGE', `no node named ${unknown.map((n) => `"${n}"`).join(', ')} in the fleet`);
  const conn = createConnector({ ...o, acceptNewFor: o.nodes, connectRetries: 1 });
  try {
    const results: TrustResult[] = [];
    for (const node of o.nodes) {
      let failure: unknown;
      try {
        await (await conn.open(node)).close();
      } catch (e) {
        failure = e;
      }
      const seen = conn.hostKeys().filter((k) => k.node === node).at(-1);
      const err = failure ? { code: isEdgectlError(failure) ? failure.code : 'EDGECTL_TRANSPORT', message: errorMessage(failure) } : undefined;
      if (seen) results.push({ node, status: seen.status, fingerprint: seen.fingerprint, keyLine: seen.keyLine, source: seen.source, ...(err ? { warning: err.message } : {}) });
      else results.push({ node, status: 'failed', error: err ?? { code: 'EDGECTL_TRANSPORT', message: 'no host key seen' } });
    }
    return results;
  } finally {
    await conn.close();
  }
}
