import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

/** ~/.ssh/config applies to a node's address: HostName, Port, User and IdentityFile, as with OpenSSH. */
let lab: Lab;
let core: LabHost;
let dir: string;

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  dir = await mkdtemp(join(tmpdir(), 'ec-sshcfg-'));
});
afterAll(async () => {
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a node addressed by an alias is reached through the ssh config, and its explicit fleet settings win', async () => {
  await writeFile(join(dir, 'ssh_config'), `Host core-alias.lab\n  HostName ${core.address}\n  Port ${core.port}\n  User root\n  IdentityFile ${lab.clientKey}\nHost *\n  User nobody\n  Port 1\n`);
  await writeFile(join(dir, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: cfg }\nspec:\n  hub: { url: "http://127.0.0.1:9/x" }\n');
  const node = (name: string, ssh: Record<string, unknown>) => `---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${name} }\nspec: ${JSON.stringify({ role: 'core', address: 'core-alias.lab', root: '/srv/edgectl-test/' + name, ssh: { hostKey: core.hostKey, ...ssh } })}\n`;
  await writeFile(join(dir, 'nodes.yaml'), node('via-config', {}) + node('explicit-user', { user: 'nobody-here' }));
  const c = createConnector({ model: (await loadFleet(dir)).model, fleetRoot: dir, sshConfig: join(dir, 'ssh_config'), userKnownHosts: false, agentSocket: false, connectTimeoutMs: 5000, connectRetries: 0 });
  try {
    const t = await c.open('via-config');
    expect((await t.exec(['sh', '-c', 'echo $USER $SSH_CONNECTION'])).stdout.trim().split(' ').filter((_, i) => i !== 2 && i !== 1)).toEqual(['root', core.address, String(core.port)]);
    // spec.ssh.user is explicit: it beats the config's User (and that user does not exist, so auth fails).
    await expect(c.open('explicit-user')).rejects.toThrow(/authentication as "nobody-here" failed/);
  } finally {
    await c.close();
  }
});
