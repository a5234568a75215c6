import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/lib/logger.js';
import { loadKongAtBoot } from '../../src/lib/reset/kong-at-boot.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { freePort } from '../helpers/ports.js';

/**
 * Kong's part of reset-to-work: after a power cut DB-less Kong has no config, and the agent loads
 * the release's kong.yml into it once its admin API answers. Kong is not packaged for Debian, so
 * this test stands in for it at the two places the agent touches: a `kong` program on PATH (what
 * `command -v kong` finds) and an HTTP server speaking the admin API's /status and
 * /config?check_hash=1 as Kong 3 documents them (a hash of the loaded config; 304 when it is the
 * same). It starts late, as Kong does after a boot.
 */
let dir: string;
let server: Server | undefined;
const savedPath = process.env.PATH;
const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields })])) as unknown as Logger;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-kongboot-'));
  lines.length = 0;
});
afterEach(async () => {
  process.env.PATH = savedPath;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function release(yml: string | undefined): Promise<string> {
  const root = join(dir, 'node');
  await mkdir(join(root, 'releases', 'r1', 'kong'), { recursive: true });
  if (yml !== undefined) await writeFile(join(root, 'releases', 'r1', 'kong', 'kong.yml'), yml);
  await symlink('releases/r1', join(root, 'current'));
  return root;
}

async function kongOnPath(): Promise<void> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'kong'), '#!/bin/sh\nexit 0\n');
  await chmod(join(bin, 'kong'), 0o755);
  process.env.PATH = `${bin}:${savedPath}`;
}

/** The admin API stand-in: what it was sent, and the hash of what it holds. */
function kongAdmin(port: number): { posts: string[] } {
  const seen = { posts: [] as string[] };
  let hash = '00000000000000000000000000000000';
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/status') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ configuration_hash: hash }));
      if (req.method === 'POST' && req.url === '/config?check_hash=1') {
        seen.posts.push(body);
        const next = String(body.length).padStart(32, 'a');
        if (next === hash) return void res.writeHead(304).end();
        hash = next;
        return void res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
      }
      res.writeHead(404).end();
    });
  });
  server.listen(port, '127.0.0.1');
  return seen;
}

describe('Kong at boot', () => {
  it('loads the release\'s kong.yml once Kong\'s admin API comes up (tries again meanwhile), and says so', async () => {
    const yml = '_format_version: "3.0"\nservices:\n- name: pos\n  url: http://127.0.0.1:9\n';
    const root = await release(yml);
    await kongOnPath();
    const port = await freePort();
    let seen: { posts: string[] } | undefined;
    setTimeout(() => (seen = kongAdmin(port)), 700); // Kong starts after the agent
    const r = await loadKongAtBoot(new LocalTransport('local', root), root, { logger, stopped: new Promise(() => {}), admin: { host: '127.0.0.1', port }, firstMs: 100 });
    expect(r).toEqual({ outcome: 'applied' });
    expect(seen!.posts.map((b) => JSON.parse(b))).toEqual([{ config: yml }]);
    expect(lines.some((l) => l.level === 'warn' && l.msg === 'kong: cannot load kong.yml yet; trying again'), 'the failed first try is logged').toBe(true);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'kong: declarative config loaded at boot', fields: { outcome: 'applied' } });
  });

  it('a Kong that kept its config (kong.conf points at a file): 304, nothing changes', async () => {
    const root = await release('_format_version: "3.0"\n');
    await kongOnPath();
    const port = await freePort();
    const seen = kongAdmin(port);
    const t = new LocalTransport('local', root);
    expect(await loadKongAtBoot(t, root, { logger, stopped: new Promise(() => {}), admin: { host: '127.0.0.1', port } })).toEqual({ outcome: 'applied' });
    expect(await loadKongAtBoot(t, root, { logger, stopped: new Promise(() => {}), admin: { host: '127.0.0.1', port } })).toEqual({ outcome: 'unchanged' });
    expect(seen.posts).toHaveLength(2);
  });

  it('no Kong on the node: skipped at once, said once; no kong.yml in the release: nothing at all', async () => {
    const root = await release('_format_version: "3.0"\n');
    process.env.PATH = '/usr/bin:/bin'; // this machine has no kong
    const port = await freePort();
    expect(await loadKongAtBoot(new LocalTransport('local', root), root, { logger, stopped: new Promise(() => {}), admin: { host: '127.0.0.1', port } })).toMatchObject({ outcome: 'skipped' });
    expect(lines.map((l) => l.msg)).toEqual(['kong: not installed on the node; kong.yml not loaded']);
    await rm(join(root, 'releases', 'r1', 'kong', 'kong.yml'));
    expect(await loadKongAtBoot(new LocalTransport('local', root), root, { logger, stopped: new Promise(() => {}) })).toBe('none');
  });

  it('stops trying when the agent stops', async () => {
    const root = await release('_format_version: "3.0"\n');
    await kongOnPath();
    const port = await freePort(); // nothing ever listens there
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    setTimeout(() => stop(), 300);
    const t0 = Date.now();
    expect(await loadKongAtBoot(new LocalTransport('local', root), root, { logger, stopped, admin: { host: '127.0.0.1', port }, firstMs: 100 })).toBe('stopped');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
