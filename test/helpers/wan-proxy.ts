/**
 * A WAN link for tests and benches, without netem (this kernel has none): a TCP proxy that
 * listens on host:port, forwards every connection to a target and delays each direction.
 *
 *   const wan = await startWanProxy({ listen: { host: '127.0.0.1' }, target: { host: relay.address, port: 22 },
 *                                     delayMs: 50, jitterMs: 5, bandwidth: 1_000_000 });
 *   wan.host, wan.port        // where to connect instead of the target (port 0 → a free one)
 *   wan.stats()               // { up, down: bytes per direction, connections, open }
 *   await wan.close()         // stops listening and cuts every connection
 *
 * Per direction ("up" is client → target, "down" is target → client): a chunk read at time t
 * is written at t + delay (+ a uniform jitter in [-jitter, +jitter], never below 0) and never
 * before the chunk read before it in that direction, so the byte stream stays in order. With a
 * bandwidth cap (bytes/s) the direction is a serial link: a chunk starts when the previous one
 * has gone out, takes len/bandwidth, then the delay. The TCP handshake's round trip is modelled
 * too (the target is dialled after the up delay, and the client's first bytes cannot arrive
 * before SYN, SYN-ACK and their own trip): a new connection costs one RTT, as on a real link.
 * A direction holds at most `highWater` bytes in flight before it stops reading its source
 * (TCP backpressure), and follows the destination socket's own backpressure.
 *
 * In another network namespace (between a relay and its edges: a lab's relay netns is the only
 * place that can reach its edges) run it as a process, through vite-node:
 *   lab.spawnIn(relay, wanProxyArgv({ listen: '10.231.9.1:2222', target: '10.231.9.10:22', delayMs: 50 }), log)
 * It writes `wan-proxy listening HOST:PORT` once it listens and runs until SIGTERM/SIGINT.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WanDirection {
  /** Fixed one-way delay, ms. */
  delayMs: number;
  /** Uniform jitter: each chunk gets delay ± up to this much (clamped at 0; order is kept anyway). */
  jitterMs?: number;
  /** Bandwidth cap, bytes per second (unset: no cap). */
  bandwidth?: number;
}

export interface WanProxyOptions {
  listen?: { host?: string; port?: number };
  target: { host: string; port: number };
  /** The same for both directions, or set per direction below. */
  delayMs?: number;
  jitterMs?: number;
  bandwidth?: number;
  up?: Partial<WanDirection>;
  down?: Partial<WanDirection>;
  /** Model the TCP handshake's round trip for each new connection (default true). */
  handshake?: boolean;
  /** Bytes a direction may hold before it pauses its source (default 4 MiB). */
  highWater?: number;
  /** Random source in [0, 1) for the jitter (default Math.random; pass a seeded PRNG to reproduce). */
  random?: () => number;
}

export interface WanStats {
  /** Bytes forwarded client → target. */
  up: number;
  /** Bytes forwarded target → client. */
  down: number;
  /** Connections accepted so far, and still open. */
  connections: number;
  open: number;
}

export interface WanProxy {
  host: string;
  port: number;
  stats(): WanStats;
  close(): Promise<void>;
}

type Item = { at: number; data?: Buffer; end?: boolean };

/** One direction of one connection: the delay line from src to dst. */
class Lane {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private linkFree = 0;
  private held = 0;
  private paused = false;
  private blocked = false;
  private dead = false;

  constructor(private readonly src: Socket, private dst: Socket | undefined, private readonly d: WanDirection, private readonly o: { highWater: number; random: () => number; count: (n: number) => void; floor: number }) {
    this.last = o.floor;
    src.on('data', (c: Buffer) => this.push(c));
    src.on('end', () => this.schedule({ at: 0, end: true }));
  }

  /** The destination once it is connected (the target is dialled after the SYN's delay). */
  attach(dst: Socket): void {
    this.dst = dst;
    dst.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    this.flush();
  }

  private push(c: Buffer): void {
    this.held += c.length;
    this.schedule({ at: 0, data: c });
    if (this.held > this.o.highWater && !this.paused) {
      this.paused = true;
      this.src.pause();
    }
  }

  private schedule(item: Item): void {
    const now = performance.now();
    const len = item.data?.length ?? 0;
    let sent = now;
    if (this.d.bandwidth && len) {
      const start = Math.max(now, this.linkFree);
      this.linkFree = start + (len / this.d.bandwidth) * 1000;
      sent = this.linkFree;
    }
    const j = this.d.jitterMs ? (this.o.random() * 2 - 1) * this.d.jitterMs : 0;
    item.at = Math.max(sent + Math.max(0, this.d.delayMs + j), this.last);
    this.last = item.at;
    this.queue.push(item);
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.dead || !this.queue.length) return;
    const wait = this.queue[0].at - performance.now();
    if (wait <= 0) return void setImmediate(() => this.flush());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, Math.ceil(wait));
  }

  private flush(): void {
    if (this.dead || !this.dst || this.blocked) return;
    const now = performance.now();
    while (this.queue.length && this.queue[0].at <= now + 0.5) {
      const item = this.queue.shift()!;
      if (item.end) {
        this.dst.end();
        continue;
      }
      const c = item.data!;
      this.held -= c.length;
      this.o.count(c.length);
      if (!this.dst.write(c)) {
        this.blocked = true;
        break;
      }
    }
    if (this.paused && this.held < this.o.highWater / 2) {
      this.paused = false;
      this.src.resume();
    }
    this.arm();
  }

  kill(): void {
    this.dead = true;
    clearTimeout(this.timer);
    this.queue = [];
  }
}

export async function startWanProxy(o: WanProxyOptions): Promise<WanProxy> {
  const dir = (x?: Partial<WanDirection>): WanDirection => ({ delayMs: x?.delayMs ?? o.delayMs ?? 0, jitterMs: x?.jitterMs ?? o.jitterMs, bandwidth: x?.bandwidth ?? o.bandwidth });
  const up = dir(o.up);
  const down = dir(o.down);
  for (const [name, d] of [['up', up], ['down', down]] as const) {
    if (!(d.delayMs >= 0) || !((d.jitterMs ?? 0) >= 0) || (d.bandwidth !== undefined && !(d.bandwidth > 0))) throw new Error(`wan-proxy: bad ${name} settings ${JSON.stringify(d)}`);
  }
  const highWater = o.highWater ?? 4 << 20;
  const random = o.random ?? Math.random;
  const handshake = o.handshake ?? true;
  const stats: WanStats = { up: 0, down: 0, connections: 0, open: 0 };
  const live = new Set<Socket>();
  let closing = false;

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    // A connection the kernel accepted before close() but handed over after it.
    if (closing) return void client.destroy();
    stats.connections++;
    stats.open++;
    live.add(client);
    client.setNoDelay(true);
    const t0 = performance.now();
    // SYN arrives after `up`; SYN-ACK reaches the client after `down`; its first bytes take `up` again.
    const synMs = handshake ? up.delayMs : 0;
    const upLane = new Lane(client, undefined, up, { highWater, random, count: (n) => (stats.up += n), floor: handshake ? t0 + 2 * up.delayMs + down.delayMs : 0 });
    let target: Socket | undefined;
    let downLane: Lane | undefined;
    let done = false;
    const kill = () => {
      if (done) return;
      done = true;
      stats.open--;
      upLane.kill();
      downLane?.kill();
      client.destroy();
      target?.destroy();
      live.delete(client);
      if (target) live.delete(target);
    };
    let ended = 0;
    const halfDone = () => {
      if (++ended === 2) kill();
    };
    // Not on 'close': a socket whose both halves are done may close while the other lane still
    // holds delayed bytes for the other socket. A connection ends when both lanes delivered their end.
    client.on('error', kill);
    client.on('finish', halfDone);
    const dial = () => {
      if (done || closing) return kill();
      target = createConnection({ host: o.target.host, port: o.target.port, allowHalfOpen: true, noDelay: true });
      target.setNoDelay(true);
      live.add(target);
      target.on('error', kill);
      target.on('finish', halfDone);
      target.on('connect', () => {
        downLane = new Lane(target!, client, down, { highWater, random, count: (n) => (stats.down += n), floor: 0 });
        downLane.attach(client);
        upLane.attach(target!);
      });
    };
    if (synMs) setTimeout(dial, synMs);
    else dial();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.listen?.host ?? '127.0.0.1', port: o.listen?.port ?? 0 }, () => resolve());
  });
  const addr = server.address() as { address: string; port: number };
  return {
    host: addr.address,
    port: addr.port,
    stats: () => ({ ...stats }),
    close: async () => {
      closing = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of live) s.destroy();
      await closed;
    },
  };
}

const hostPort = (s: string | undefined, what: string) => {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s ?? '');
  if (!m) throw new Error(`wan-proxy: --${what} HOST:PORT, got ${s ?? 'nothing'}`);
  return { host: m[1], port: Number(m[2]) };
};

/** The proxy as a process (for another netns): --listen H:P --target H:P --delay MS [--jitter MS] [--bandwidth B/s]. */
async function main(argv: string[]): Promise<void> {
  const opt = (n: string) => {
    const i = argv.indexOf(`--${n}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (n: string) => (opt(n) === undefined ? undefined : Number(opt(n)));
  const p = await startWanProxy({ listen: hostPort(opt('listen'), 'listen'), target: hostPort(opt('target'), 'target'), delayMs: num('delay') ?? 0, jitterMs: num('jitter'), bandwidth: num('bandwidth') });
  process.stdout.write(`wan-proxy listening ${p.host}:${p.port}\n`);
  const stop = () => void p.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const SCRIPT = fileURLToPath(import.meta.url);
const VITE_NODE = join(dirname(SCRIPT), '..', '..', 'node_modules', 'vite-node', 'vite-node.mjs');

/** The argv that runs this proxy as a process (e.g. `lab.spawnIn(relay, wanProxyArgv(…))`). */
export function wanProxyArgv(o: { listen: string; target: string; delayMs: number; jitterMs?: number; bandwidth?: number }): string[] {
  const extra = [...(o.jitterMs ? ['--jitter', String(o.jitterMs)] : []), ...(o.bandwidth ? ['--bandwidth', String(o.bandwidth)] : [])];
  return [process.execPath, VITE_NODE, SCRIPT, '--', '--wan-proxy-main', '--listen', o.listen, '--target', o.target, '--delay', String(o.delayMs), ...extra];
}

if (process.argv.includes('--wan-proxy-main')) {
  main(process.argv.slice(process.argv.indexOf('--wan-proxy-main') + 1)).catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
