import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/**
 * Ports the kernel says are free, instead of hand-picked ones: two test runs on one machine (two
 * worktrees, say) would otherwise bind the same ports and fail each other. Each port is bound on
 * the address the test will use (a port free on 127.0.0.1 may be taken on 127.0.2.1 or on ::1)
 * and released again before the caller binds it: the window between is small, not zero.
 *
 * They are drawn at random from below the kernel's ephemeral range (ip_local_port_range), not
 * from port 0: the kernel hands ephemeral ports to outgoing connections too, so a port an agent
 * gave up when a test killed it could be some client's local port by the time the test starts it
 * again (EADDRINUSE on the restart). A port below that range is only ever taken by a bind.
 */

/** The ports to draw from: [10000, the ephemeral range's start), or above its end if that is too narrow. */
function candidates(): { lo: number; hi: number } {
  let low = 32768, high = 60999;
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(a) && Number.isInteger(b)) [low, high] = [a, b];
  } catch { /* not Linux: the usual range */ }
  if (low - 10000 >= 2000) return { lo: 10000, hi: low - 1 };
  if (65535 - high >= 2000) return { lo: high + 1, hi: 65535 };
  return { lo: 1024, hi: 65535 };
}

const RANGE = candidates();
const pick = () => RANGE.lo + Math.floor(Math.random() * (RANGE.hi - RANGE.lo + 1));

/** A server bound to host:port, or undefined when the port is taken; any other error (a host not on this machine) is thrown. */
function bind(host: string, port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' || e.code === 'EACCES' ? resolve(undefined) : reject(e)));
    s.listen({ host, port, exclusive: true }, () => resolve(s));
  });
}

const release = (servers: (Server | undefined)[]) => Promise.all(servers.map((s) => s && new Promise((r) => s.close(r))));

/** One free port on host. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0];
}

/** n distinct free ports on host: all held at once, so none is drawn twice. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const held: Server[] = [];
  try {
    for (let tries = 0; held.length < n; tries++) {
      if (tries >= 200 + 20 * n) throw new Error(`no ${n} free ports on ${host} in ${RANGE.lo}-${RANGE.hi}`);
      const s = await bind(host, pick());
      if (s) held.push(s);
    }
    return held.map((s) => (s.address() as { port: number }).port);
  } finally {
    await release(held);
  }
}

/**
 * The first of n consecutive free ports on host, for what numbers ports from a base (local mode's
 * --local-port-base: node i on base + i; an agent's admin API on its listen port + 1).
 */
export async function freePortRange(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort(host);
    if (base + n - 1 > RANGE.hi) continue;
    const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => bind(host, base + 1 + i)));
    await release(rest);
    if (rest.every(Boolean)) return base;
  }
  throw new Error(`no ${n} consecutive free ports on ${host}`);
}
