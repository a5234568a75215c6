import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import type { Transport } from '../../src/lib/transport/types.js';

/**
 * The one suite every Transport must pass (as abstract-level's suite does for stores).
 * `t()` gives a transport to the node, `dir` a scratch directory on the node, `httpTarget` an
 * echo server as the node sees it (answers with method, path, host header and body as JSON).
 */
export interface ContractEnv {
  t(): Transport;
  dir(): string;
  httpTarget(): { host: string; port: number };
}

export const HOSTILE_WORDS = [
  '$(touch /tmp/edgectl-pwned)', '`id`', "it's", '"double"', 'back\\slash', ';rm -rf /nonexistent', 'a b  c', 'line\nbreak',
  '*', '~', '', '-n', 'X=1', '$HOME', '!!', '{a,b}', '|', '&&', '>out', 'tab\there', 'ünïcødé ✓', "'", "''", '\\', '#comment',
];

export function transportContract(env: ContractEnv): void {
  it('exec passes every argv word through unchanged, however hostile', async () => {
    const r = await env.t().exec(['printf', '%s\\0', ...HOSTILE_WORDS]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE_WORDS);
    // A word as argv[0] is a program name, never an assignment or a command line.
    const assign = await env.t().exec(['X=1', 'true']);
    expect(assign.code).toBe(127);
    const st = await env.t().stat('/tmp/edgectl-pwned');
    expect(st).toBeUndefined();
  });

  it('exec reports exit codes and stderr; a missing program is 127', async () => {
    const r = await env.t().exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const missing = await env.t().exec(['/nonexistent/edgectl-no-such-program']);
    expect(missing.code).toBe(127);
  });

  it('exec reports a command killed by a signal as 128 + its number, like a shell', async () => {
    expect((await env.t().exec(['sh', '-c', 'kill -TERM $$'])).code).toBe(143);
    expect((await env.t().exec(['sh', '-c', 'kill -USR1 $$'])).code).toBe(138);
  });

  it('exec runs in cwd', async () => {
    const r = await env.t().exec(['pwd'], { cwd: env.dir() });
    expect(r.stdout.trim()).toBe(env.dir());
  });

  it('exec refuses a NUL byte in an argument', async () => {
    await expect(env.t().exec(['echo', 'a\0b'])).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
  });

  it('exec streams stdin: a string, a buffer and a 4 MB stream', async () => {
    expect((await env.t().exec(['cat'], { input: 'hello\n' })).stdout).toBe('hello\n');
    expect((await env.t().exec(['wc', '-c'], { input: Buffer.alloc(1000, 1) })).stdout.trim()).toBe('1000');
    const chunks = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
    const want = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    const r = await env.t().exec(['sha256sum'], { input: Readable.from(chunks) });
    expect(r.stdout.split(' ')[0]).toBe(want);
  });

  it('exec unpacks a tar stream piped from a local tar', async () => {
    const src = await mkdtemp(join(tmpdir(), 'ec-tar-'));
    try {
      await mkdir(join(src, 'sub'));
      await writeFile(join(src, 'sub', 'a.txt'), 'alpha');
      await writeFile(join(src, 'b.bin'), randomBytes(300_000));
      const tar = spawn('tar', ['-c', '-C', src, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const dest = join(env.dir(), 'untar');
      const r = await env.t().exec(['sh', '-c', 'mkdir -p "$1" && tar -x -C "$1"', 'sh', dest], { input: tar.stdout });
      expect(r).toMatchObject({ code: 0 });
      expect((await env.t().readFile(join(dest, 'sub', 'a.txt')))?.toString()).toBe('alpha');
      expect((await env.t().stat(join(dest, 'b.bin')))?.size).toBe(300_000);
    } finally {
      await rm(src, { recursive: true, force: true });
    }
  });

  it('exec times out with a coded error instead of hanging', async () => {
    const t0 = Date.now();
    await expect(env.t().exec(['sleep', '30'], { timeoutMs: 500 })).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('readFile: bytes, or undefined when missing (also under a missing or non-directory parent)', async () => {
    const p = join(env.dir(), 'r.bin');
    const data = randomBytes(70_000);
    await env.t().writeFiles([{ path: p, data }]);
    expect((await env.t().readFile(p))?.equals(data)).toBe(true);
    expect(await env.t().readFile(join(env.dir(), 'nope'))).toBeUndefined();
    expect(await env.t().readFile(join(env.dir(), 'no', 'such', 'dir'))).toBeUndefined();
    expect(await env.t().readFile(join(p, 'under-a-file'))).toBeUndefined();
  });

  it('writeFiles creates parent directories and sets modes (also on an existing file)', async () => {
    const d = join(env.dir(), 'w', 'deep', 'er');
    await env.t().writeFiles([
      { path: join(d, 'a.conf'), data: Buffer.from('a') },
      { path: join(d, 'secret.key'), data: Buffer.from('s'), mode: 0o600 },
      { path: join(env.dir(), 'w', 'run.sh'), data: Buffer.from('#!/bin/sh\necho ran\n'), mode: 0o755 },
    ]);
    expect(await env.t().stat(join(d, 'a.conf'))).toMatchObject({ type: 'file', size: 1, mode: 0o644 });
    expect(await env.t().stat(join(d, 'secret.key'))).toMatchObject({ type: 'file', mode: 0o600 });
    expect((await env.t().exec([join(env.dir(), 'w', 'run.sh')])).stdout).toBe('ran\n');
    await env.t().writeFiles([{ path: join(d, 'a.conf'), data: Buffer.from('again'), mode: 0o640 }]);
    expect(await env.t().stat(join(d, 'a.conf'))).toMatchObject({ type: 'file', size: 5, mode: 0o640 });
    expect(await env.t().stat(join(env.dir(), 'w', 'deep'))).toMatchObject({ type: 'dir' });
  });

  it('stat tells files, directories and symlinks apart without following links', async () => {
    const base = join(env.dir(), 's');
    await env.t().writeFiles([{ path: join(base, 'releases', 'r1', 'f'), data: Buffer.from('x') }]);
    expect((await env.t().exec(['ln', '-s', 'releases/r1', join(base, 'current')])).code).toBe(0);
    expect((await env.t().exec(['ln', '-s', 'nowhere', join(base, 'dangling')])).code).toBe(0);
    expect(await env.t().stat(join(base, 'current'))).toMatchObject({ type: 'symlink', target: 'releases/r1' });
    expect(await env.t().stat(join(base, 'dangling'))).toMatchObject({ type: 'symlink', target: 'nowhere' });
    expect(await env.t().stat(join(base, 'releases'))).toMatchObject({ type: 'dir' });
    expect(await env.t().stat(join(base, 'releases', 'r1', 'f'))).toMatchObject({ type: 'file', size: 1 });
    expect(await env.t().stat(join(base, 'missing'))).toBeUndefined();
  });

  it('http reaches host:port as the node sees it, with method, headers and body', async () => {
    const { host, port } = env.httpTarget();
    const r = await env.t().http({ host, port, method: 'POST', path: '/healthz?x=1', headers: { Host: 'app.example.com', 'X-Test': 'yes' }, body: 'ping' });
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body.toString());
    expect(echo).toMatchObject({ method: 'POST', url: '/healthz?x=1', host: 'app.example.com', test: 'yes', body: 'ping' });
    expect(r.headers['content-type']).toBe('application/json');
    const bad = env.t().http({ host, port, method: 'GET', path: '/', headers: { 'X-Evil': 'a\r\nInjected: 1' } });
    await expect(bad).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
  });

  it('http to a closed port is a coded error', async () => {
    await expect(env.t().http({ host: '127.0.0.1', port: 1, method: 'GET', path: '/', timeoutMs: 3000 })).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
  });
}

/** The echo server the http contract talks to, as a node one-liner (run it on the node's side). */
export const ECHO_SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, test: req.headers['x-test'], body }));
  });
});
s.listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;
