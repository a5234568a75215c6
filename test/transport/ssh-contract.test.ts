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
  // spawnIn gives the process no stdout to read "listening" from: ask it from where it runs until it answers.
  for (const h of [core, edge]) {
    const where = h.netns ? h : undefined;
    const url = `http://${h.netns ? '127.0.0.1' : h.address}:${ECHO_PORT}/`;
    const p = lab.spawnIn(where, [process.execPath, '-e', ECHO_SERVER, new URL(url).hostname, String(ECHO_PORT)]);
    for (let i = 0; ; i++) {
      if (p.exitCode !== null) throw new Error(`echo server on ${h.name} exited with status ${p.exitCode}`);
      if ((await lab.execIn(where, ['curl', '-s', '-m', '1', '-o', '/dev/null', url])).code === 0) break;
      if (i === 100) throw new Error(`echo server on ${h.name} did not answer at ${url}`);
      await new Promise((r) => setTimeout(r, 100));
    }
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
