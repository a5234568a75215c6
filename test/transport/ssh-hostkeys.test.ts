import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector, type Connector, type ConnectorOptions } from '../../src/lib/transport/connect.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

/** Host keys are verified on every hop, relays included (FIELD-NOTES: ssh2 accepts any key without hostVerifier). */
let lab: Lab;
let core: LabHost;
let relay: LabHost;
let edge: LabHost;
let other: LabHost;
let tmp: string;
const open: Connector[] = [];

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  other = await lab.addHost('core-2');
  relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  tmp = await mkdtemp(join(tmpdir(), 'ec-hk-'));
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
afterAll(async () => {
  await lab?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh fleet dir per test; `pin` pins keys in the node docs, `knownHosts` writes the fleet's known_hosts. */
async function connector(o: { pin?: boolean; knownHosts?: string; userKnownHosts?: string; hosts?: LabHost[]; extra?: Partial<ConnectorOptions> } = {}) {
  const fleet = join(tmp, `fleet-${n++}`);
  await lab.writeFleet(fleet, { pin: o.pin, hosts: o.hosts });
  if (o.knownHosts !== undefined) await writeFile(join(fleet, 'known_hosts'), o.knownHosts);
  const c = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: o.userKnownHosts ?? false, sshConfig: false, agentSocket: false, connectTimeoutMs: 5000, connectRetries: 0, ...o.extra });
  open.push(c);
  return { c, fleet };
}

describe('host key verification', () => {
  it('a pinned key that matches connects, and is reported as pinned', async () => {
    const { c } = await connector({ pin: true });
    const t = await c.open('core-1');
    expect((await t.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    expect(c.hostKeys()).toEqual([expect.objectContaining({ node: 'core-1', fingerprint: core.fingerprint, status: 'pinned' })]);
  });

  it('an unknown key fails with its SHA256 fingerprint and the command that trusts it', async () => {
    const { c } = await connector();
    const err = await c.open('core-1').catch((e) => e);
    expect(err.code).toBe('EDGECTL_HOSTKEY_UNKNOWN');
    expect(err.message).toContain(core.fingerprint);
    expect(core.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(err.hint).toContain('edgectl trust core-1');
    expect(err.hint).toContain('--accept-new');
  });

  it('relays are verified too: an unknown relay key stops the route at the relay', async () => {
    // edge-1 pinned, relay-1 not: the route must not get past the relay.
    const fleetKh = lab.knownHosts([edge]);
    const { c } = await connector({ knownHosts: fleetKh, hosts: [relay, edge] });
    const err = await c.open('edge-1').catch((e) => e);
    expect(err.code).toBe('EDGECTL_HOSTKEY_UNKNOWN');
    expect(err.message).toContain('relay-1');
    expect(err.message).toContain(relay.fingerprint);
    expect(c.stats().byHost['edge-1']).toBeUndefined();
  });

  it('--accept-new records first-seen keys of every hop in the fleet known_hosts, and later runs verify against them', async () => {
    const { c, fleet } = await connector({ hosts: [relay, edge], extra: { acceptNew: true } });
    const t = await c.open('edge-1');
    expect((await t.exec(['true'])).code).toBe(0);
    const kh = await readFile(join(fleet, 'known_hosts'), 'utf8');
    expect(kh).toContain(`${relay.address} ${relay.hostKey}`);
    expect(kh).toContain(`${edge.address} ${edge.hostKey}`);
    expect(c.hostKeys().map((k) => [k.node, k.status])).toEqual([['relay-1', 'recorded'], ['edge-1', 'recorded']]);
    // Without --accept-new, the same fleet now connects on what was recorded.
    const again = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false });
    open.push(again);
    await (await again.open('edge-1')).exec(['true']);
    expect(again.hostKeys().map((k) => k.status)).toEqual(['known', 'known']);
  });

  it('a changed key is refused, even with --accept-new, whether pinned or in known_hosts', async () => {
    const wrong = `ssh-ed25519 ${other.hostKey.split(' ')[1]}`;
    const kh = `[${core.address}]:${core.port} ${wrong}\n`;
    const { c, fleet } = await connector({ knownHosts: kh, hosts: [core], extra: { acceptNew: true } });
    const err = await c.open('core-1').catch((e) => e);
    expect(err.code).toBe('EDGECTL_HOSTKEY_CHANGED');
    expect(err.message).toContain(core.fingerprint);
    expect(err.message).toContain(other.fingerprint);
    expect(await readFile(join(fleet, 'known_hosts'), 'utf8')).toBe(kh); // not overwritten
    // Pinned in the node doc: same refusal.
    const fleet2 = join(tmp, `fleet-${n++}`);
    await lab.writeFleet(fleet2, { hosts: [core] });
    const doc = (await readFile(join(fleet2, 'nodes.yaml'), 'utf8')).replace('"ssh":{', `"ssh":{"hostKey":"${wrong}",`);
    await writeFile(join(fleet2, 'nodes.yaml'), doc);
    const c2 = createConnector({ model: (await loadFleet(fleet2)).model, fleetRoot: fleet2, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, acceptNew: true });
    open.push(c2);
    await expect(c2.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED' });
  });

  it('a key that changes on the node (reinstall) is refused after having been trusted', async () => {
    const h = await lab.addHost('core-3');
    const { c, fleet } = await connector({ hosts: [h], extra: { acceptNew: true } });
    await (await c.open('core-3')).exec(['true']);
    const old = h.fingerprint;
    await lab.rekey(h);
    expect(h.fingerprint).not.toBe(old);
    const c2 = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, acceptNew: true });
    open.push(c2);
    const err = await c2.open('core-3').catch((e) => e);
    expect(err.code).toBe('EDGECTL_HOSTKEY_CHANGED');
    expect(err.message).toContain(h.fingerprint);
    expect(err.message).toContain(old);
  });

  it("the user's known_hosts is used when the fleet has none, including hashed |1| entries", async () => {
    const user = join(tmp, 'user_known_hosts');
    await writeFile(user, lab.knownHosts([core]));
    execFileSync('ssh-keygen', ['-H', '-f', user], { stdio: 'ignore' });
    const text = await readFile(user, 'utf8');
    expect(text).toMatch(/^\|1\|/);
    expect(text).not.toContain(core.address);
    const { c } = await connector({ userKnownHosts: user, hosts: [core] });
    await (await c.open('core-1')).exec(['true']);
    expect(c.hostKeys()[0]).toMatchObject({ status: 'known', source: user });
  });

  it("the fleet's known_hosts decides where the user's does not know the host; where both do, they must agree", async () => {
    const elsewhere = join(tmp, 'user_known_hosts_other_host');
    await writeFile(elsewhere, `[${other.address}]:${other.port} ${other.hostKey}\n`);
    const { c } = await connector({ userKnownHosts: elsewhere, knownHosts: lab.knownHosts([core]), hosts: [core] });
    await (await c.open('core-1')).exec(['true']);
    expect(c.hostKeys()[0]).toMatchObject({ status: 'known', source: expect.stringMatching(/fleet-\d+\/known_hosts$/) });
    // The user's known_hosts has another key for core-1: the fleet's entry does not override it.
    const user = join(tmp, 'user_known_hosts_wrong');
    await writeFile(user, `[${core.address}]:${core.port} ${other.hostKey}\n`);
    const { c: c1 } = await connector({ userKnownHosts: user, knownHosts: lab.knownHosts([core]), hosts: [core] });
    await expect(c1.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CONFLICT' });
    // With no fleet entry, the user's (wrong) key decides: changed.
    const { c: c2 } = await connector({ userKnownHosts: user, hosts: [core] });
    await expect(c2.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED' });
  });

  it('a key marked @revoked is refused', async () => {
    const { c } = await connector({ knownHosts: lab.knownHosts([core]) + `@revoked * ${core.hostKey}\n`, hosts: [core] });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED' });
  });
});
