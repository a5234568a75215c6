import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector, type Connector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { ECHO_SERVER, transportContract } from './contract.js';

/** The same contract as LocalTransport, over real sshd: directly, and through a relay into a namespace. */
let lab: Lab;
let fleet: string;
let conn: Connector;
let core: LabHost;
let edge: LabHost;
const ECHO_PORT = 22991;

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  const relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  fleet = await mkdtemp(join(tmpdir(), 'ec-fleet-'));
  await lab.writeFleet(fleet, { pin: true });
  conn = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, connectTimeoutMs: 5000 });
  // The echo server listens on each node's own loopback: reachable only "as the node sees it".
  for (const h of [core, edge]) {
    const p = lab.spawnIn(h.netns ? h : undefined, [process.execPath, '-e', ECHO_SERVER, h.netns ? '127.0.0.1' : h.address, String(ECHO_PORT)]);
    await new Promise((r, j) => { p.stdout?.once('data', r); p.once('exit', j); setTimeout(r, 1500); });
  }
});
afterAll(async () => {
  await conn?.close();
  await lab?.close();
  if (fleet) await rm(fleet, { recursive: true, force: true });
});

for (const which of ['direct', 'via relay'] as const) {
  describe(`SshTransport contract (${which})`, () => {
    let t: Transport;
    beforeAll(async () => {
      t = await conn.open(which === 'direct' ? 'core-1' : 'edge-1');
    });
    transportContract({
      t: () => t,
      dir: () => (which === 'direct' ? core : edge).root,
      httpTarget: () => ({ host: which === 'direct' ? core.address : '127.0.0.1', port: ECHO_PORT }),
    });
  });
}
