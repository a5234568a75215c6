import { createServer, type Server } from 'node:net';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector, type ConnectorOptions } from '../../src/lib/transport/connect.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

/** Unreachable nodes and dropped connections are results (coded errors naming the hop), never hangs or crashes. */
let lab: Lab;
let core: LabHost;
let relay: LabHost;
let edge: LabHost;
let fleet: string;
let silent: Server;
const sockets = new Set<import('node:net').Socket>();

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  // A TCP port that accepts and never speaks SSH: the handshake has to time out.
  silent = createServer((s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => silent.listen(core.port + 25, core.address, r));
  fleet = await mkdtemp(join(tmpdir(), 'ec-fail-'));
  await lab.writeFleet(fleet, { pin: true });
  const extra = (name: string, spec: Record<string, unknown>) => `---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${name} }\nspec: ${JSON.stringify({ role: 'edge', ssh: { user: 'root' }, root: '/srv/edgectl-test/x-' + name, ...spec })}\n`;
  const docs = [
    extra('refused', { address: core.address, ssh: { user: 'root', port: core.port + 26 } }),
    extra('silent', { address: core.address, ssh: { user: 'root', port: core.port + 25 } }),
    extra('ghost', { address: '10.231.' + (lab.slot * 8 + 1) + '.250', via: ['relay-1'] }),
    extra('edge-direct', { address: edge.address, ssh: { user: 'root', hostKey: edge.hostKey } }),
  ];
  await writeFile(join(fleet, 'nodes.yaml'), (await readFile(join(fleet, 'nodes.yaml'), 'utf8')) + docs.join(''));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  silent?.close();
  await lab?.close();
  if (fleet) await rm(fleet, { recursive: true, force: true });
});

const connector = async (extra: Partial<ConnectorOptions> = {}) => createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, connectTimeoutMs: 1500, connectRetries: 1, ...extra });

async function timed<T>(p: Promise<T>): Promise<{ err: any; ms: number }> {
  const t0 = Date.now();
  const err = await p.then(() => undefined, (e) => e);
  return { err, ms: Date.now() - t0 };
}

describe('unreachable nodes', () => {
  it('a refused port is an EDGECTL_TRANSPORT error naming the node, after a bounded retry', async () => {
    const c = await connector();
    const { err, ms } = await timed(c.open('refused'));
    expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(err.message).toMatch(/cannot reach refused: failed at the node itself: .*ECONNREFUSED/);
    expect(c.stats().byHost.refused).toBe(2); // first try + 1 retry
    expect(ms).toBeLessThan(3000);
    await c.close();
  });

  it('a peer that never answers the handshake times out within connectTimeout × attempts', async () => {
    const c = await connector();
    const { err, ms } = await timed(c.open('silent'));
    expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(err.message).toContain('silent');
    expect(ms).toBeGreaterThanOrEqual(1500);
    expect(ms).toBeLessThan(2 * 2000 + 1000);
    await c.close();
  });

  it('a node its relay cannot reach fails naming the node and the relay it was tried through', async () => {
    const c = await connector({ connectTimeoutMs: 4000, connectRetries: 0 });
    const { err, ms } = await timed(c.open('ghost'));
    expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(err.message).toContain('cannot reach ghost via relay-1');
    expect(err.message).toContain('relay-1');
    expect(ms).toBeLessThan(6000);
    // The relay itself stays usable for the other nodes behind it.
    expect((await (await c.open('edge-1')).exec(['true'])).code).toBe(0);
    expect(c.stats().byHost['relay-1']).toBe(1);
    await c.close();
  });

  it('an edge node without its relay in `via` is unreachable (no route from the operator)', async () => {
    const c = await connector();
    const { err } = await timed(c.open('edge-direct'));
    expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(err.message).toMatch(/cannot reach edge-direct: .*(EHOSTUNREACH|ENETUNREACH|timed out|handshake)/);
    await c.close();
  });

  it('a dead relay fails every node behind it fast, with one set of connection attempts for all of them', async () => {
    const h = await lab.addHost('relay-dead', { relay: true });
    const e = await lab.addHost('edge-behind-dead', { behind: h });
    const f2 = await mkdtemp(join(tmpdir(), 'ec-fail2-'));
    try {
      await lab.writeFleet(f2, { pin: true, hosts: [h, e] });
      const more = [1, 2, 3].map((i) => `---\n${lab.nodeDoc(e, { pin: true }).replace('name: edge-behind-dead', `name: also-${i}`).replace(`"root":"${e.root}"`, `"root":"${e.root}-${i}"`)}`);
      await writeFile(join(f2, 'nodes.yaml'), (await readFile(join(f2, 'nodes.yaml'), 'utf8')) + more.join(''));
      await lab.stop(h);
      const c = createConnector({ model: (await loadFleet(f2)).model, fleetRoot: f2, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, connectTimeoutMs: 1500, connectRetries: 1 });
      const results = await Promise.allSettled(['edge-behind-dead', 'also-1', 'also-2', 'also-3'].map((n) => c.open(n)));
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason.message).toContain('failed at relay relay-dead (hop 1 of 2)');
      }
      expect(c.stats().byHost['relay-dead']).toBe(2);
      await c.close();
    } finally {
      await lab.start(h);
      await rm(f2, { recursive: true, force: true });
    }
  });
});

describe('connections dropped mid-operation', () => {
  it('killing the connection during an exec rejects the exec promptly; the next open reconnects', async () => {
    const c = await connector();
    const t = await c.open('core-1');
    const running = t.exec(['sleep', '30']);
    await new Promise((r) => setTimeout(r, 400));
    const t0 = Date.now();
    await lab.killSessions(core);
    await expect(running).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(t.exec(['true'])).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    const t2 = await c.open('core-1');
    expect((await t2.exec(['echo', 'back'])).stdout).toBe('back\n');
    await c.close();
  });

  it('killing the relay connection fails an upload to the node behind it instead of hanging', async () => {
    const c = await connector();
    const t = await c.open('edge-1');
    const files = Array.from({ length: 200 }, (_, i) => ({ path: join(edge.root, 'up', `f${i}`), data: Buffer.alloc(256 * 1024, i) }));
    const upload = t.writeFiles(files);
    await new Promise((r) => setTimeout(r, 300));
    await lab.killSessions(relay);
    await expect(upload).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    // A streamed exec through the dead relay fails too, and a new open goes through a new relay connection.
    await expect(t.exec(['true'])).rejects.toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    const t2 = await c.open('edge-1');
    expect((await t2.exec(['true'])).code).toBe(0);
    expect(c.stats().byHost['relay-1']).toBe(2);
    await c.close();
  });

  it('a peer that freezes (no FIN, no RST) is detected by keepalives, not waited on forever', async () => {
    const c = await connector({ keepaliveIntervalMs: 500 });
    const t = await c.open('core-1');
    const running = t.exec(['sleep', '30']);
    await new Promise((r) => setTimeout(r, 300));
    const frozen = lab.sessionPids(core);
    expect(frozen.length).toBeGreaterThan(0);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const err = await running.catch((e) => e);
      expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
      expect(err.message).toMatch(/connection lost/);
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGKILL');
          process.kill(pid, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      await c.close();
    }
  });

  it('wrong credentials fail once, without retries', async () => {
    const other = join(lab.dir, 'other_key');
    const { execFileSync } = await import('node:child_process');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const c = await connector({ identity: [other], connectRetries: 2 });
    const { err } = await timed(c.open('core-1'));
    expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
    expect(err.message).toMatch(/authentication/i);
    expect(c.stats().byHost['core-1']).toBe(1);
    await c.close();
  });
});
