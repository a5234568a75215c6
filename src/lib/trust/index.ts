import { errorMessage, isEdgectlError } from '../errors.js';
import { resolvedNodes, type FleetModel } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { requireNodes } from '../nodes/select.js';
import { runNodes } from '../nodes/run-nodes.js';
import { createConnector, type ConnectorOptions } from '../transport/connect.js';

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
  requireNodes(o.nodes, resolvedNodes(o.model), { fleet: o.fleetRoot });
  const conn = createConnector({ ...o, acceptNewFor: o.nodes, connectRetries: 1 });
  try {
    // One node at a time: a relay listed before its nodes is trusted before they are reached through it.
    const failures = await runNodes(conn, o.nodes, { concurrency: 1, node: (n) => n, run: async () => undefined, unreachable: (_n, e) => e });
    return o.nodes.map((node, i): TrustResult => {
      const failure = failures[i];
      const seen = conn.hostKeys().filter((k) => k.node === node).at(-1);
      const err = failure ? { code: isEdgectlError(failure) ? failure.code : 'EDGECTL_TRANSPORT', message: errorMessage(failure) } : undefined;
      if (seen) return { node, status: seen.status, fingerprint: seen.fingerprint, keyLine: seen.keyLine, source: seen.source, ...(err ? { warning: err.message } : {}) };
      return { node, status: 'failed', error: err ?? { code: 'EDGECTL_TRANSPORT', message: 'no host key seen' } };
    });
  } finally {
    await conn.close();
  }
}
