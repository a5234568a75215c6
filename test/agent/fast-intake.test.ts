import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../helpers/ports.js';
import { type AgentProc, depth, killAll, sha, startAgent } from './helpers.js';

// The device port's front (src/lib/agent/http/fast-intake.ts) answers plain single POSTs itself
// and hands every other connection to Node's HTTP server: these tests speak raw HTTP/1.1 to it,
// as curl or wrk would, and check that both paths answer alike and that nothing odd is taken.
let PORT: number;
let ADMIN: number;
let dir: string;
let edge: AgentProc;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-fast-intake-'));
  let upstream: number;
  [PORT, ADMIN, upstream] = await freePorts(3);
  const config = {
    format: 'edgectl-agent/v1', node: 'edge-f', role: 'edge', listen: `127.0.0.1:${PORT}`, admin: `127.0.0.1:${ADMIN}`,
    dataDir: path.join(dir, 'data'), maxMessageBytes: 1024, upstreams: [`http://127.0.0.1:${upstream}/v1/forward`],
    acceptForward: [], requestTimeoutMs: 1000, heartbeatSeconds: 0,
    tenants: [
      { name: 'acme', tokens: [sha('tok-acme')], spoolBytes: 10_000_000, topics: [{ name: 'events' }] },
      { name: 'tiny', tokens: [sha('tok-tiny')], spoolBytes: 600, topics: [{ name: 'events' }] },
      { name: 'slowco', tokens: [sha('tok-slow')], spoolBytes: 1_000_000, requestsPerSecond: 2, topics: [{ name: 'events' }] },
    ],
  };
  await writeFile(path.join(dir, 'agent.json'), JSON.stringify(config));
  edge = await startAgent('edge-f', PORT, ADMIN, ['--config', path.join(dir, 'agent.json')]);
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

interface Answer { status: number; headers: Map<string, string>; names: string[]; body: string }

/** Sends `chunks` (with `gapMs` between them) on one connection and reads `n` answers, or what came before the server closed it. */
function exchange(chunks: (string | Buffer)[], n: number, gapMs = 0, halfClose = false): Promise<{ answers: Answer[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(PORT, '127.0.0.1');
    let data = Buffer.alloc(0);
    const answers: Answer[] = [];
    const done = (closed: boolean) => { clearTimeout(t); s.destroy(); resolve({ answers, closed }); };
    const t = setTimeout(() => reject(new Error(`no ${n} answers in time: ${JSON.stringify(answers)} ${data.toString()}`)), 10_000);
    s.on('data', (d) => {
      data = Buffer.concat([data, d]);
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        const lines = data.toString('latin1', 0, end).split('\r\n');
        const headers = new Map<string, string>();
        const names: string[] = [];
        for (const l of lines.slice(1)) { const i = l.indexOf(':'); names.push(l.slice(0, i)); headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()); }
        const len = Number(headers.get('content-length') ?? 0);
        if (data.length < end + 4 + len) return;
        answers.push({ status: Number(lines[0].split(' ')[1]), headers, names, body: data.toString('utf8', end + 4, end + 4 + len) });
        data = data.subarray(end + 4 + len);
        if (answers.length === n) return done(false);
      }
    });
    s.on('error', () => done(true));
    s.on('close', () => done(true));
    void (async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (halfClose) s.end();
    })();
  });
}

const req = (body: string, extra = '', token = 'tok-acme', topic = 'events') =>
  `POST /v1/q/${topic} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('device port front (fast intake)', () => {
  it('answers pipelined requests in order, on both paths, on one connection', async () => {
    const before = await depth(edge);
    const { answers } = await exchange([req('{"n":1}') + req('{"n":2}') + 'GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n' + req('{"n":3}') + req('{"n":4}', 'Connection: close\r\n')], 5);
    expect(answers.map((a) => a.status)).toEqual([202, 202, 200, 202, 202]);
    const ids = answers.filter((a) => a.status === 202).map((a) => Number((JSON.parse(a.body) as { id: string }).id.split(':')[2]));
    expect(ids).toEqual([ids[0], ids[0] + 1, ids[0] + 2, ids[0] + 3]);
    expect(await depth(edge)).toBe(before + 4);
  });

  it('answers a client that half-closes after its requests, then closes', async () => {
    const before = await depth(edge);
    const { answers, closed } = await exchange([req('{"h":1}') + req('{"h":2}')], 3, 0, true);
    expect([answers.map((a) => a.status), closed]).toEqual([[202, 202], true]);
    expect(await depth(edge)).toBe(before + 2);
  });

  it('answers as Node\'s server does: the same status, headers in the same order, the same body shape', async () => {
    // The second request carries a header the fast path does not take: Node's server answers it.
    const fast = (await exchange([req('{"a":1}')], 1)).answers[0];
    const node = (await exchange([req('{"a":1}', 'X-Other: 1\r\n')], 1)).answers[0];
    expect(fast.names).toEqual(node.names);
    expect([fast.status, fast.headers.get('connection'), fast.headers.get('keep-alive')]).toEqual([node.status, node.headers.get('connection'), node.headers.get('keep-alive')]);
    expect(Object.keys(JSON.parse(fast.body) as object)).toEqual(Object.keys(JSON.parse(node.body) as object));
    // A full tenant: 507 with Retry-After from the fast path too.
    let full: Answer | undefined;
    for (let i = 0; i < 20 && !full; i++) {
      const a = (await exchange([req(`{"fill":"${'x'.repeat(100)}"}`, '', 'tok-tiny')], 1)).answers[0];
      if (a.status !== 202) full = a;
    }
    const viaNode = (await exchange([req(`{"fill":"${'x'.repeat(100)}"}`, 'X-Other: 1\r\n', 'tok-tiny')], 1)).answers[0];
    expect([full?.status, full?.headers.get('retry-after'), JSON.parse(full!.body).error]).toEqual([507, '5', 'spool_full']);
    expect(full!.names).toEqual(viaNode.names);
    expect(JSON.parse(full!.body)).toEqual(JSON.parse(viaNode.body));
  });

  it('hands refusals to Node: unknown token, undeclared topic, rate limit, body over the limit', async () => {
    const before = await depth(edge);
    expect((await exchange([req('{}', '', 'nope')], 1)).answers[0].status).toBe(401);
    expect((await exchange([req('{}', '', 'tok-acme', 'orders')], 1)).answers[0].status).toBe(403);
    expect((await exchange([req('{}', '', 'tok-acme', 'UPPER')], 1)).answers[0].status).toBe(400);
    const big = (await exchange([req(`"${'x'.repeat(1100)}"`)], 1)).answers[0];
    expect([big.status, JSON.parse(big.body).error]).toEqual([413, 'too_large']);
    const slow = (await exchange([req('{}', '', 'tok-slow') + req('{}', '', 'tok-slow') + req('{}', '', 'tok-slow') + req('{}', '', 'tok-slow')], 4)).answers;
    expect(slow.map((a) => a.status)).toContain(429);
    expect(await depth(edge)).toBe(before + slow.filter((a) => a.status === 202).length);
  });

  it('takes no odd request: Node refuses each as it would, and nothing is stored', async () => {
    const before = await depth(edge);
    const odd = [
      // Both framings: a smuggling attempt.
      req('{}', 'Transfer-Encoding: chunked\r\n'),
      // Two Content-Lengths that disagree.
      req('{}', 'Content-Length: 5\r\n'),
      // A folded header line (obsolete line folding).
      req('{}', 'X-Fold: a\r\n b\r\n'),
      // A bare LF in a header line, a NUL, a control character.
      req('{}', 'X-Bad: a\nb\r\n'), req('{}', 'X-Bad: a\u0000b\r\n'),
      // A long run of blanks then a control character (a quadratic regex would stall here).
      req('{}', `X-Blank: a${' '.repeat(7000)}\u0001\r\n`),
      // A header block over 16 KiB (Node's limit: 431).
      req('{}', `X-Big: ${'y'.repeat(17_000)}\r\n`),
    ];
    for (const r of odd) {
      const t0 = Date.now();
      const { answers } = await exchange([r], 1);
      expect([r.slice(0, 300), answers[0]?.status ?? 'closed']).not.toEqual([r.slice(0, 300), 202]);
      expect(Date.now() - t0).toBeLessThan(3000);
    }
    expect(await depth(edge)).toBe(before);
  });

  it('leaves partial and slow requests to Node: split across packets they are stored, headers too slow time out', async () => {
    const before = await depth(edge);
    const r = req('{"split":1}');
    const { answers } = await exchange([r.slice(0, 20), r.slice(20, 90), r.slice(90)], 1, 50);
    expect(answers[0].status).toBe(202);
    expect(await depth(edge)).toBe(before + 1);
    // headersTimeout is requestTimeoutMs (1 s) here: a header sent a byte at a time never completes.
    const t0 = Date.now();
    const slow = await exchange(Array.from({ length: 60 }, (_, i) => r[i]), 1, 100);
    expect(slow.answers[0]?.status ?? 'closed').not.toBe(202);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await depth(edge)).toBe(before + 1);
  });
});
