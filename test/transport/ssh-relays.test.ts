import { connect } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

/** Relays: ProxyJump-like chains, one pooled connection per relay, reverse tunnels. */
let lab: Lab;
let r1: LabHost;
let r2: LabHost;
let deep: LabHost;
let nat: LabHost;
let many: LabHost[];
let fleet: string;

beforeAll(async () => {
  lab = await createLab();
  r1 = await lab.addHost('relay-1', { relay: true });
  r2 = await lab.addHost('relay-2', { relay: true, behind: r1 });
  deep = await lab.addHost('edge-deep', { behind: r2 });
  nat = await lab.addHost('edge-nat', { behind: r1, reverseTunnel: true });
  many = await lab.addHosts(Array.from({ length: 20 }, (_, i) => `edge-${String(i).padStart(2, '0')}`), { behind: r1, shareNetns: 'many' });
  fleet = await mkdtemp(join(tmpdir(), 'ec-relays-'));
  await lab.writeFleet(fleet, { pin: true });
}, 180_000);
afterAll(async () => {
  await lab?.close();
  if (fleet) await rm(fleet, { recursive: true, force: true });
});

const connector = async (extra = {}) => createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, connectTimeoutMs: 5000, ...extra });

/** The address sshd saw the connection arrive on: proves which host answered. */
const serverAddr = async (t: { exec(a: string[]): Promise<{ stdout: string }> }) => (await t.exec(['sh', '-c', 'echo $SSH_CONNECTION'])).stdout.trim().split(' ')[2];

describe('relays', () => {
  it('edge hosts cannot be reached from the operator directly, only through their relay', async () => {
    const direct = await new Promise<string>((resolve) => {
      const s = connect({ host: many[0].address, port: 22, timeout: 2000 });
      s.on('connect', () => (s.destroy(), resolve('connected')));
      s.on('timeout', () => (s.destroy(), resolve('timeout')));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(direct).not.toBe('connected');
    // The relay's namespace can reach it.
    const fromRelay = await lab.execIn(r1, ['bash', '-c', `exec 3<>/dev/tcp/${many[0].address}/22 && head -c 7 <&3`]);
    expect(fromRelay.stdout).toBe('SSH-2.0');
  });

  it('a chain of two relays reaches the node behind both (each hop verified)', async () => {
    const c = await connector();
    try {
      const t = await c.open('edge-deep');
      expect(await serverAddr(t)).toBe(deep.address);
      expect(c.route('edge-deep')).toEqual(['relay-1', 'relay-2', 'edge-deep']);
      expect(c.stats().byHost).toEqual({ 'relay-1': 1, 'relay-2': 1, 'edge-deep': 1 });
      expect(c.hostKeys().map((k) => [k.node, k.status])).toEqual([['relay-1', 'pinned'], ['relay-2', 'pinned'], ['edge-deep', 'pinned']]);
    } finally {
      await c.close();
    }
  });

  it('20 nodes behind one relay cost one relay handshake; closing the run closes the relay connection', async () => {
    const c = await connector();
    try {
      const ts = await Promise.all(many.map((h) => c.open(h.name)));
      const seen = await Promise.all(ts.map(serverAddr));
      expect(seen).toEqual(many.map((h) => h.address));
      expect(c.stats().byHost['relay-1']).toBe(1);
      expect(c.stats().handshakes).toBe(21);
      // Each node's transport close keeps the relay open for the others...
      await ts[0].close();
      expect(await serverAddr(ts[1])).toBe(many[1].address);
      expect(await lab.connectionsTo(r1)).toBe(1);
    } finally {
      await c.close();
    }
    // ...and the run's close ends it.
    await expect.poll(() => lab.connectionsTo(r1), { timeout: 5000 }).toBe(0);
  });

  it('more concurrent commands than sshd MaxSessions (10) on one connection all succeed', async () => {
    const c = await connector();
    try {
      const t = await c.open('edge-00');
      const rs = await Promise.all(Array.from({ length: 24 }, (_, i) => t.exec(['sh', '-c', `sleep 0.1; echo ${i}`])));
      expect(rs.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 24 }, (_, i) => String(i)));
    } finally {
      await c.close();
    }
  });

  it('a reverse-tunnel node is reached through its relay, at the port its tunnel holds on the relay loopback', async () => {
    const c = await connector();
    try {
      const t = await c.open('edge-nat');
      expect((await t.exec(['sh', '-c', 'echo $SSH_CONNECTION'])).stdout.trim().split(' ').slice(2)).toEqual(['127.0.0.1', '22']);
      expect((await t.exec(['ip', '-br', 'addr', 'show', 'up0'])).stdout).toContain(nat.address);
      expect(c.stats().byHost).toEqual({ 'relay-1': 1, 'edge-nat': 1 });
    } finally {
      await c.close();
    }
  });

  it('a reverse-tunnel node whose tunnel is down fails naming the tunnel, with how to check it', async () => {
    const f2 = await mkdtemp(join(tmpdir(), 'ec-relays2-'));
    try {
      await lab.writeFleet(f2, { pin: true, hosts: [r1] });
      const doc = lab.nodeDoc(nat, { pin: true }).replace(`"tunnelPort":${nat.tunnelPort}`, `"tunnelPort":${nat.tunnelPort! + 50}`);
      await writeFile(join(f2, 'nodes.yaml'), (await readFile(join(f2, 'nodes.yaml'), 'utf8')) + '---\n' + doc);
      const c = createConnector({ model: (await loadFleet(f2)).model, fleetRoot: f2, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, connectTimeoutMs: 3000, connectRetries: 0 });
      const err = await c.open('edge-nat').catch((e) => e);
      await c.close();
      expect(err).toMatchObject({ code: 'EDGECTL_TRANSPORT' });
      expect(err.message).toContain(`reverse tunnel at 127.0.0.1:${nat.tunnelPort! + 50} on relay-1`);
      expect(err.hint).toContain(`ssh -N -R 127.0.0.1:${nat.tunnelPort! + 50}:127.0.0.1:22 relay-1`);
    } finally {
      await rm(f2, { recursive: true, force: true });
    }
  });
});
