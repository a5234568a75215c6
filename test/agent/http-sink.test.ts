import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, depth, killAll, post, sha, startAgent, status, waitFor } from './helpers.js';
import { freePortRange } from '../helpers/ports.js';

// A hub whose sink is a webhook on loopback: the first POST is refused (503, Retry-After), later ones accepted.
let dir: string;
let hook: Server;
let hub: AgentProc;
const seen: { status: number; type: string | undefined; body: string }[] = [];
// The webhook's port, chosen by the kernel when it listens (port 0).
let HOOK: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-httpsink-'));
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const code = seen.length === 0 ? 503 : 200;
      seen.push({ status: code, type: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(code, code === 503 ? { 'retry-after': '1' } : {}).end(code === 503 ? 'busy' : 'ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  HOOK = (hook.address() as { port: number }).port;
  const port = await freePortRange(2);
  hub = await startAgent('hub-w', port, port + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `http://127.0.0.1:${HOOK}/hook`,
    '--token', `acme:${sha('tok')}`, '--topic', 'acme/t', '--heartbeat-seconds', '0']);
}, 120_000);

afterAll(async () => {
  await killAll();
  await new Promise((r) => hook?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('http(s) sink', { timeout: 60_000 }, () => {
  it('POSTs NDJSON sink records, keeps the batch after a non-2xx and delivers it once accepted', async () => {
    const bodies: [string, string | Buffer][] = [['application/json', '{"a":1}'], ['text/plain', 'two'], ['application/octet-stream', Buffer.from([0xff, 0x00, 0x10])]];
    const ids: string[] = [];
    for (const [type, b] of bodies) {
      const r = await post(hub.port, 't', b, { authorization: 'Bearer tok', 'content-type': type });
      expect(r.status).toBe(202);
      ids.push(r.json.id);
    }
    await waitFor(async () => (await depth(hub)) === 0, 30_000, 'the hub to empty its spool into the webhook');
    expect(seen[0].status).toBe(503);
    const accepted = seen.filter((s) => s.status === 200);
    expect(accepted.every((s) => s.type === 'application/x-ndjson' && s.body.endsWith('\n'))).toBe(true);
    const records = accepted.flatMap((s) => s.body.trimEnd().split('\n').map((l) => JSON.parse(l)));
    expect(records.map((r) => r.id)).toEqual(ids);
    expect(records.map((r) => [r.tenant, r.topic, r.contentType, r.encoding, r.body])).toEqual([
      ['acme', 't', 'application/json', 'utf8', '{"a":1}'],
      ['acme', 't', 'text/plain', 'utf8', 'two'],
      ['acme', 't', 'application/octet-stream', 'base64', Buffer.from([0xff, 0x00, 0x10]).toString('base64')],
    ]);
    const s = await status(hub);
    expect(s.forward.errors).toBeGreaterThanOrEqual(1);
    expect(s.forward.lastError.message).toMatch(/webhook answered 503: busy/);
    expect(s.forward.lastSuccessTo).toBe(`http:http://127.0.0.1:${HOOK}`);
  });
});
