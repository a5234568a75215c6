import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';

export interface Warmed {
  /** Lets go of the warmed transports: call once the work has opened its own (their connections then close as usual). */
  release(): Promise<void>;
}

/**
 * Opens the first nodes' connections while the caller does something else (plan renders the
 * fleet): a handshake costs several round trips on an edge link, the render costs CPU, and the two
 * overlap instead of adding up. The work that follows opens each node through the same connector
 * and gets the same pooled connection; only the first `count` nodes are warmed, so a large fleet
 * never runs more handshakes at once than that. A failure is not reported here: the pool keeps it
 * for the run, and the work's own open reports it.
 */
export function warmConnections(connector: Pick<Connector, 'open'>, nodes: readonly string[], count: number): Warmed {
  const opening = nodes.slice(0, Math.max(0, count)).map((n) => connector.open(n).then((t): Transport | undefined => t, () => undefined));
  return {
    async release() {
      for (const t of await Promise.all(opening)) await t?.close().catch(() => {});
    },
  };
}
