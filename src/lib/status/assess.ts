import type { Health, NodeStatus } from './types.js';

/** Below this share of its disk free under the root, a node is degraded (a spool that cannot grow). */
export const MIN_DISK_FREE = 0.02;
/** A certificate in the current release this close to expiry makes its node degraded (plan and validate warn at the same). */
export const CERT_WARN_DAYS = 14;
/** Tunnel states that mean "up" (the tunnel's own words). */
const TUNNEL_UP = new Set(['up', 'connected', 'open']);

/**
 * A node's health from what was observed, pure: unreachable (or an answer refused: error) first,
 * then every reason to call it degraded. Being behind the fleet's HEAD is not one: that is
 * drift's verdict (`edgectl drift`), and a commit may not concern this node at all.
 */
export function assess(n: Omit<NodeStatus, 'health' | 'problems'>, o: { refused?: boolean } = {}): { health: Health; problems: string[] } {
  if (!n.reachable) return { health: 'unreachable', problems: [n.error ?? 'unreachable'] };
  if (o.refused) return { health: 'error', problems: [n.error ?? 'answer refused'] };
  const p: string[] = [];
  if (!n.release.current) p.push('no release');
  else if (n.release.good !== n.release.current) p.push(n.release.good ? 'current is not the good release' : 'no good release');
  if (!n.nginx.up) p.push('nginx down');
  else if (n.source === 'live' && n.nginx.currentConfigId && n.agent.state !== 'unknown') {
    // nginx -s reload exits 0 when nginx rejects a config: the one it serves is the truth. (A node
    // with neither curl nor bash, agent "unknown", could not be asked.)
    if (!n.nginx.configId) p.push('nginx does not answer /.edgectl/config');
    else if (n.nginx.configId !== n.nginx.currentConfigId) p.push("nginx serves another config than current's");
  }
  if (n.agent.state === 'down') p.push(`agent down${n.agent.detail ? ` (${n.agent.detail})` : ''}`);
  else if (n.agent.store && n.agent.store !== 'open') p.push(`agent store ${n.agent.store}`);
  if (n.spool && n.spool.quarantined > 0) p.push(`${n.spool.quarantined} store(s) quarantined`);
  for (const a of n.fastcgi ?? []) if (a.state !== 'running') p.push(`fastcgi ${a.app} ${a.state}`);
  if (n.tunnel && !TUNNEL_UP.has(n.tunnel.state)) p.push(`tunnel ${n.tunnel.state}`);
  // A certificate the node serves that expires soon (or has): renew it (`edgectl certs renew`, or commit a new one) and apply.
  for (const c of n.certs ?? []) {
    if (c.days < 0) p.push(`certificate ${c.app} expired`);
    else if (c.days < CERT_WARN_DAYS) p.push(`certificate ${c.app} expires in ${c.days} day(s)`);
  }
  if (n.disk && n.disk.totalBytes > 0 && n.disk.freeBytes / n.disk.totalBytes < MIN_DISK_FREE) p.push(`disk ${((100 * n.disk.freeBytes) / n.disk.totalBytes).toFixed(1)}% free`);
  return { health: p.length ? 'degraded' : 'healthy', problems: p };
}
