import { EdgectlError, isEdgectlError } from '../errors.js';
import { connectHop, type Hop, type HopOptions, type SshConn } from './ssh-conn.js';

/**
 * The connections of one run. A route is the list of hops to a node (its relays, then the
 * node). Each prefix of a route is one pooled connection, so every node behind a relay shares
 * the relay's connection: 500 nodes behind one relay cost one relay handshake. A failed hop
 * stays failed for the run (nodes behind a dead relay fail fast instead of each retrying);
 * a connection that drops is forgotten, and the next open reconnects.
 */
export class ConnectionPool {
  private readonly conns = new Map<string, Promise<SshConn>>();
  private readonly refs = new Map<string, number>();
  private readonly hopKeys = new Set<string>();
  private readonly perHost = new Map<string, number>();
  private handshakes = 0;
  private keep = false;

  /** Connections stay open when released, until closeAll (one connection per node for plan and apply). */
  keepOpen(): void {
    this.keep = true;
  }

  constructor(private readonly opts: Omit<HopOptions, 'onHandshake'>) {}

  /** The connection to the last hop of the route; call release(route) when done with it. */
  async acquire(route: Hop[]): Promise<SshConn> {
    const target = route[route.length - 1];
    let conn: SshConn | undefined;
    for (let i = 0; i < route.length; i++) {
      const key = routeKey(route.slice(0, i + 1));
      if (i < route.length - 1) this.hopKeys.add(key);
      let p = this.conns.get(key);
      if (!p) {
        const via = conn;
        p = connectHop(route[i], via, { ...this.opts, onHandshake: (h) => this.count(h) });
        this.conns.set(key, p);
        p.then((c) => c.whenClosed(() => this.conns.get(key) === p && this.conns.delete(key)), () => {});
      }
      try {
        conn = await p;
      } catch (e) {
        throw describe(e, target.node, route, i);
      }
    }
    const key = routeKey(route);
    this.refs.set(key, (this.refs.get(key) ?? 0) + 1);
    return conn!;
  }

  /** Closes the node's own connection once nobody uses it, unless other nodes hop through it. */
  release(route: Hop[]): void {
    const key = routeKey(route);
    const n = (this.refs.get(key) ?? 1) - 1;
    this.refs.set(key, n);
    if (n > 0 || this.hopKeys.has(key) || this.keep) return;
    const p = this.conns.get(key);
    this.conns.delete(key);
    p?.then((c) => c.end(), () => {});
  }

  stats(): { handshakes: number; byHost: Record<string, number>; open: number } {
    return { handshakes: this.handshakes, byHost: Object.fromEntries(this.perHost), open: this.conns.size };
  }

  async closeAll(): Promise<void> {
    const all = [...this.conns.values()];
    this.conns.clear();
    const settled = await Promise.allSettled(all);
    // Innermost first, so relays close after the connections tunnelled through them.
    for (const s of settled.reverse()) if (s.status === 'fulfilled') s.value.end();
  }

  private count(h: Hop): void {
    this.handshakes++;
    this.perHost.set(h.node, (this.perHost.get(h.node) ?? 0) + 1);
  }
}

function routeKey(route: Hop[]): string {
  return route.map((h) => h.node).join('>');
}

function describe(e: unknown, node: string, route: Hop[], failed: number): EdgectlError {
  const path = route.length > 1 ? ` via ${route.slice(0, -1).map((h) => h.node).join(' → ')}` : '';
  const hop = failed === route.length - 1 ? 'the node itself' : `relay ${route[failed].node} (hop ${failed + 1} of ${route.length})`;
  const msg = (e as Error)?.message ?? String(e);
  const text = `cannot reach ${node}${path}: failed at ${hop}: ${msg}`;
  if (isEdgectlError(e)) return new EdgectlError(e.code, text, { hint: e.hint, detail: e.detail, cause: e });
  return new EdgectlError('EDGECTL_TRANSPORT', text, { cause: e });
}
