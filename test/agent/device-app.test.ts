import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/lib/agent/agent.js';
import { agentConfigSchema } from '../../src/lib/bundle/agent-json.js';
import { silentLogger } from '../../src/lib/logger.js';
import { sha } from './helpers.js';

/**
 * The agent's handlers in this process: Agent.create builds them apart from listen(), so a test
 * serves them on its own http.Server (port 0) with a real spool, no agent process and no fixed
 * port. Agent.listen and the process around it are what the tests that start bin/run.js cover.
 */
let dir: string;
let agent: Agent;
const servers: Server[] = [];

async function serve(handler: Agent['device']): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-device-app-'));
  const config = agentConfigSchema.parse({
    format: 'edgectl-agent/v1', node: 'edge-i', role: 'edge', listen: '127.0.0.1:9', admin: '127.0.0.1:9',
    dataDir: path.join(dir, 'data'), maxMessageBytes: 1024, upstreams: ['http://127.0.0.1:9/v1/forward'], heartbeatSeconds: 0,
    tenants: [{ name: 'acme', tokens: [sha('tok')], spoolBytes: 1 << 20, topics: [{ name: 'events' }] }],
  });
  agent = await Agent.create(config, silentLogger);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await agent?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the device app, built apart from listen', () => {
  it('takes a device message into the spool, refuses a caller without a token, and keeps status off the device API', async () => {
    const device = await serve(agent.device);
    const admin = await serve(agent.admin);
    const post = (headers: Record<string, string>) => fetch(`${device}/v1/q/events`, { method: 'POST', body: '{"n":1}', headers });
    expect((await post({ authorization: 'Bearer tok' })).status).toBe(202);
    expect((await post({})).status).toBe(401);
    expect((await fetch(`${device}/status`)).status).toBe(404);
    expect(await (await fetch(`${device}/healthz`)).json()).toMatchObject({ ok: true });
    const token = (await readFile(path.join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const status = (await (await fetch(`${admin}/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { queues: { tenant: string; topic: string; depth: number }[] };
    expect(status.queues.map((q) => [q.tenant, q.topic, q.depth])).toContainEqual(['acme', 'events', 1]);
  });
});
