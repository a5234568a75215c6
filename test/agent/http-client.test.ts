import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/lib/agent/agent.js';
import { agentConfigSchema } from '../../src/lib/bundle/agent-json.js';
import { createHttpClient, type HttpClient } from '../../src/lib/http-client.js';
import { silentLogger } from '../../src/lib/logger.js';
import { spoolStatus, withAdmin } from '../../src/lib/spool/client.js';
import { freePortRange } from '../helpers/ports.js';
import { sha, waitFor } from './helpers.js';

/**
 * The one HTTP client (src/lib/http-client.ts) against real loopback servers: keep-alive per
 * origin, everything closed by close(); and that the agent's forwarder and `spool --admin` send
 * through the client they are given (a recording wrapper around the real one).
 */
let dir: string;
const servers: Server[] = [];

async function serve(onRequest: (req: IncomingMessage, body: Buffer) => [number, string]): Promise<{ url: string; server: Server; sockets: { open: number; closed: number } }> {
  const sockets = { open: 0, closed: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [status, text] = onRequest(req, Buffer.concat(chunks));
      res.writeHead(status, { 'content-type': 'text/plain', 'x-seen': req.method ?? '' }).end(text);
    });
  });
  server.on('connection', (s) => { sockets.open++; s.on('close', () => sockets.closed++); });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, sockets };
}

/** The real client, with every URL it is asked for noted. */
function recording(): HttpClient & { urls: string[] } {
  const real = createHttpClient();
  const urls: string[] = [];
  return { urls, request: (url, req) => (urls.push(`${req.method} ${String(url)}`), real.request(url, req)), close: () => real.close() };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-http-client-'));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => { s.close(r); s.closeAllConnections(); })));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the HTTP client', () => {
  it('answers status, headers and the whole body; keeps at most two connections per origin; close() closes them and refuses more', async () => {
    const s = await serve((req, body) => [req.url === '/missing' ? 404 : 200, `${req.method} ${req.url} ${body.toString('utf8')}`]);
    const http = createHttpClient();
    const a = await http.request(`${s.url}/one?x=1`, { method: 'POST', body: 'hello', timeoutMs: 5000 });
    expect([a.status, a.headers['x-seen'], a.body.toString('utf8')]).toEqual([200, 'POST', 'POST /one?x=1 hello']);
    const b = await http.request(new URL('/missing', s.url), { method: 'GET', timeoutMs: 5000 });
    expect([b.status, b.body.toString('utf8')]).toEqual([404, 'GET /missing ']);
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => http.request(`${s.url}/n${i}`, { method: 'GET', timeoutMs: 5000 })));
    expect(many.map((r) => r.body.toString('utf8'))).toEqual(Array.from({ length: 8 }, (_, i) => `GET /n${i} `));
    // Ten requests, concurrent ones among them, over the pool's two kept-alive connections.
    expect(s.sockets.open).toBe(2);
    expect(s.sockets.closed).toBe(0);
    await http.close();
    await waitFor(() => s.sockets.closed === 2, 5000, 'the connections to be closed');
    await expect(http.request(s.url, { method: 'GET', timeoutMs: 5000 })).rejects.toThrow(/closed/);
  });

  it('the forwarder and spool --admin send through the client they are given, which the agent leaves open', async () => {
    const forwarded: string[] = [];
    const up = await serve((req) => (forwarded.push(`${req.method} ${req.url}`), [200, '{"accepted":1,"duplicates":0}']));
    const port = await freePortRange(2);
    await writeFile(path.join(dir, 'cred'), 'secret-of-edge-h\n', { mode: 0o600 });
    const config = agentConfigSchema.parse({
      format: 'edgectl-agent/v1', node: 'edge-h', role: 'edge', listen: `127.0.0.1:${port}`, admin: `127.0.0.1:${port + 1}`,
      dataDir: path.join(dir, 'data'), maxMessageBytes: 1024, upstreams: [`${up.url}/v1/forward`], credentialFile: path.join(dir, 'cred'), heartbeatSeconds: 0,
      tenants: [{ name: 'acme', tokens: [sha('tok')], spoolBytes: 1 << 20, topics: [{ name: 'events' }] }],
    });
    const http = recording();
    const agent = await Agent.create(config, silentLogger, { http });
    try {
      await agent.listen();
      expect((await fetch(`http://127.0.0.1:${port}/v1/q/events`, { method: 'POST', body: 'm', headers: { authorization: 'Bearer tok' } })).status).toBe(202);
      await waitFor(() => forwarded.length > 0, 10_000, 'the forwarder to POST upstream');
      expect(forwarded[0]).toBe('POST /v1/forward');
      expect(http.urls).toContain(`POST ${up.url}/v1/forward`);

      const tokenFile = path.join(dir, 'data', 'admin-token');
      expect((await readFile(tokenFile, 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
      const s = await withAdmin({ admin: `http://127.0.0.1:${port + 1}`, adminTokenFile: tokenFile, fleet: '.' }, (api) => spoolStatus(api, {}), { http });
      expect(s.node).toBe('edge-h');
      expect(http.urls).toContain(`GET http://127.0.0.1:${port + 1}/v1/spool`);
    } finally {
      await agent.close();
    }
    // Given, not owned: still usable after the agent and withAdmin are done.
    expect((await http.request(up.url, { method: 'GET', timeoutMs: 5000 })).status).toBe(200);
    await http.close();
  });
});
