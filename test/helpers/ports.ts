import { createServer, type Server } from 'node:net';

/**
 * Ports the kernel says are free, instead of hand-picked ones: two test runs on one machine (two
 * worktrees, say) would otherwise bind the same ports and fail each other. Each port is bound on
 * the address the test will use (a port free on 127.0.0.1 may be taken on 127.0.2.1 or on ::1)
 * and released again before the caller binds it: the window between is small, not zero.
 */

function bind(host: string, port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen({ host, port, exclusive: true }, () => resolve(s));
  });
}

const release = (servers: (Server | undefined)[]) => Promise.all(servers.map((s) => s && new Promise((r) => s.close(r))));

/** One free port on host. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0];
}

/** n distinct free ports on host: all held at once, so the kernel cannot hand out one twice. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const held: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = await bind(host, 0);
      if (!s) throw new Error(`no free port on ${host}`);
      held.push(s);
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
    if (base + n > 65536) continue;
    const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => bind(host, base + 1 + i)));
    await release(rest);
    if (rest.every(Boolean)) return base;
  }
  throw new Error(`no ${n} consecutive free ports on ${host}`);
}
