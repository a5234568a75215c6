import { spawn } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { mulberry32 } from '../helpers/prng.js';
import { startWanProxy, wanProxyArgv, type WanProxy } from '../helpers/wan-proxy.js';

/**
 * The WAN harness (test/helpers/wan-proxy.ts) over real loopback sockets: each direction's
 * delay, the handshake's round trip, order under jitter, the bandwidth cap, half-close, close(),
 * and the same proxy run as a process (as it runs inside a relay's namespace).
 */
let echo: Server;
let echoPort: number;
const proxies: WanProxy[] = [];

beforeAll(async () => {
  // Echoes everything; when the client ends its half, answers "bye" and ends its own.
  echo = createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (c) => s.write(c));
    s.on('end', () => s.end('bye'));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => echo.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  for (const p of proxies) await p.close();
  await new Promise((r) => echo.close(r));
});

async function proxy(o: Parameters<typeof startWanProxy>[0]): Promise<WanProxy> {
  const p = await startWanProxy(o);
  proxies.push(p);
  return p;
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with everything received once `n` bytes have arrived. */
function receive(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let len = 0;
    const on = (c: Buffer) => {
      got.push(c);
      len += c.length;
      if (len >= n) {
        s.off('data', on);
        resolve(Buffer.concat(got));
      }
    };
    s.on('data', on);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('delays each direction by its own one-way delay: an echo takes up + down', async () => {
  const p = await proxy({ target: { host: '127.0.0.1', port: echoPort }, up: { delayMs: 30 }, down: { delayMs: 60 }, handshake: false });
  const s = await connect(p.port);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const got = receive(s, 4);
    s.write('ping');
    expect((await got).toString()).toBe('ping');
    times.push(performance.now() - t0);
  }
  s.destroy();
  for (const t of times) {
    expect(t).toBeGreaterThanOrEqual(89);
    expect(t).toBeLessThan(90 + 600); // the delay is not piled up: each echo pays it once
  }
  expect(p.stats()).toMatchObject({ up: 12, down: 12, connections: 1 });
});

it('a new connection pays the TCP handshake round trip too: the first echo takes two RTTs', async () => {
  const p = await proxy({ target: { host: '127.0.0.1', port: echoPort }, delayMs: 25 });
  const t0 = performance.now();
  const s = await connect(p.port);
  const got = receive(s, 2);
  s.write('hi');
  await got;
  const first = performance.now() - t0;
  const t1 = performance.now();
  const again = receive(s, 2);
  s.write('hi');
  await again;
  const second = performance.now() - t1;
  s.destroy();
  expect(first).toBeGreaterThanOrEqual(99); // SYN, SYN-ACK, data, echo: 4 × 25
  expect(second).toBeGreaterThanOrEqual(49);
  expect(second).toBeLessThan(first);
});

it('keeps the byte order under jitter larger than the delay', async () => {
  const rnd = mulberry32(15);
  const p = await proxy({ target: { host: '127.0.0.1', port: echoPort }, delayMs: 10, jitterMs: 40, handshake: false, random: rnd });
  const s = await connect(p.port);
  const chunks = Array.from({ length: 150 }, (_, i) => `<${i}>`);
  const sent = Buffer.from(chunks.join(''));
  const got = receive(s, sent.length);
  for (const c of chunks) {
    s.write(c);
    await sleep(1); // separate chunks, each with its own random delay
  }
  expect((await got).toString()).toBe(sent.toString());
  s.destroy();
});

it('caps the bandwidth: 120 kB at 200 kB/s take at least 0.6 s, and every byte arrives', async () => {
  let received = 0;
  let lastAt = 0;
  const sink = createServer((s) => s.on('data', (c) => ((received += c.length), (lastAt = performance.now()))));
  await new Promise<void>((r) => sink.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  try {
    const p = await proxy({ target: { host: '127.0.0.1', port: (sink.address() as { port: number }).port }, delayMs: 5, bandwidth: 200_000, handshake: false });
    const s = await connect(p.port);
    const t0 = performance.now();
    s.write(Buffer.alloc(120_000, 7));
    while (received < 120_000) await sleep(20);
    const took = (lastAt - t0) / 1000;
    s.destroy();
    expect(p.stats().up).toBe(120_000);
    expect(took).toBeGreaterThanOrEqual(0.59);
    expect(took).toBeLessThan(3);
    // And without the cap the same bytes go at once (the delay only).
    received = 0;
    const q = await proxy({ target: { host: '127.0.0.1', port: (sink.address() as { port: number }).port }, delayMs: 5, handshake: false });
    const s2 = await connect(q.port);
    const t1 = performance.now();
    s2.write(Buffer.alloc(120_000, 7));
    while (received < 120_000) await sleep(5);
    expect((lastAt - t1) / 1000).toBeLessThan(0.3);
    s2.destroy();
  } finally {
    await new Promise((r) => sink.close(r));
  }
});

it('half-close: the client ends its side, the answer still comes through after the delay', async () => {
  const p = await proxy({ target: { host: '127.0.0.1', port: echoPort }, delayMs: 30, handshake: false });
  const s = await connect(p.port);
  const all: Buffer[] = [];
  s.on('data', (c) => all.push(c));
  const ended = new Promise((r) => s.once('end', r));
  s.end('last');
  await ended;
  expect(Buffer.concat(all).toString()).toBe('lastbye');
  await sleep(50);
  expect(p.stats().open).toBe(0);
});

it('close() cuts open connections and stops listening', async () => {
  const p = await startWanProxy({ target: { host: '127.0.0.1', port: echoPort }, delayMs: 5 });
  const s = await connect(p.port);
  const closed = new Promise((r) => s.once('end', r)); // the proxy's side is gone (half-open client: 'end', not 'close')
  s.on('error', () => {});
  await p.close();
  await closed;
  await expect(connect(p.port)).rejects.toThrow(/ECONNREFUSED/);
});

it('runs as a process too (as inside a relay namespace): listens where told, delays, stops on SIGTERM', async () => {
  const port = await freePort();
  const argv = wanProxyArgv({ listen: `127.0.0.1:${port}`, target: `127.0.0.1:${echoPort}`, delayMs: 40 });
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50);
    expect(out).toContain(`wan-proxy listening 127.0.0.1:${port}`);
    const s = await connect(port);
    const t0 = performance.now();
    const got = receive(s, 3);
    s.write('abc');
    expect((await got).toString()).toBe('abc');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(79);
    s.destroy();
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  expect(child.exitCode).toBe(0);
});
