import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { createConnector, type Connector, type ConnectorOptions } from '../../src/lib/transport/connect.js';
import { cli } from '../helpers/cli.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';


/**
 * What the operator's machine trusts, against a hostile fleet, on real sshd (issue 10):
 * `@revoked` wins over every pin (class 8), a fleet pin that differs from the operator's own
 * known_hosts is refused loudly (class 8), a fleet known_hosts that is a link is neither read
 * nor appended to (class 4), and key files are regular files of bounded size (class 9).
 */
let lab: Lab;
let core: LabHost;
let other: LabHost;
let tmp: string;
let home: string;
const open: Connector[] = [];
const fleetName = (() => {
  let n = 0;
  return () => join(tmp, `fleet-${n++}`);
})();

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  other = await lab.addHost('core-2');
  tmp = await mkdtemp(join(tmpdir(), 'ec-tf-'));
  home = join(tmp, 'home');
  await mkdir(join(home, '.ssh'), { recursive: true });
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
afterAll(async () => {
  await lab?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const name = (h: LabHost) => `[${h.address}]:${h.port}`;
const revoke = (h: LabHost, names = '*') => `@revoked ${names} ${h.hostKey}\n`;

async function connector(o: { pin?: boolean; knownHosts?: string; userKnownHosts?: string; extra?: Partial<ConnectorOptions> } = {}) {
  const fleet = fleetName();
  await lab.writeFleet(fleet, { pin: o.pin, hosts: [core] });
  if (o.knownHosts !== undefined) await writeFile(join(fleet, 'known_hosts'), o.knownHosts);
  let user: string | false = false;
  if (o.userKnownHosts !== undefined) await writeFile((user = join(fleet, '..', `user-kh-${fleet.split('-').pop()}`)), o.userKnownHosts);
  const c = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: user, sshConfig: false, agentSocket: false, connectTimeoutMs: 5000, connectRetries: 0, ...o.extra });
  open.push(c);
  return { c, fleet, user: user as string };
}

/**
 * The built CLI as an operator runs it, HOME in the test's directory, killed if it hangs, and
 * with 1 GiB of data memory: a regression that reads /dev/zero fails here instead of taking
 * the machine's memory.
 */
async function edgectl(args: string[], timeout = 30_000) {
  const r = await cli(args, { home, timeout, wrap: ['prlimit', `--data=${1 << 30}`] });
  return { ...r, code: r.timedOut ? 'killed' : r.code };
}

describe('@revoked is honoured everywhere', () => {
  it('a fleet known_hosts holding only a revoked line: --accept-new refuses and records nothing', async () => {
    const kh = revoke(core, name(core));
    const { c, fleet } = await connector({ knownHosts: kh, extra: { acceptNew: true } });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED', message: expect.stringMatching(/@revoked in .*known_hosts:1/) });
    expect(await readFile(join(fleet, 'known_hosts'), 'utf8')).toBe(kh);
    expect(c.hostKeys()).toEqual([]);
  });

  it("a pinned hostKey does not win over a revocation in the operator's known_hosts (refused before connecting)", async () => {
    const { c } = await connector({ pin: true, userKnownHosts: revoke(core) });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED', message: expect.stringMatching(/spec\.ssh\.hostKey of node core-1 trusts ED25519 SHA256:.*marked @revoked/) });
    expect(c.stats().handshakes).toBe(0);
  });

  it("a revocation in the machine's /etc/ssh/ssh_known_hosts binds edgectl too, over a fleet pin", async () => {
    const system = join(tmp, 'ssh_known_hosts');
    await writeFile(system, revoke(core));
    const { c } = await connector({ pin: true, extra: { systemKnownHosts: system } });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED', message: expect.stringMatching(/marked @revoked/) });
    expect(c.stats().handshakes).toBe(0);
    // The same fleet without that file connects: the refusal is the revocation's.
    const ok = await connector({ pin: true, extra: { systemKnownHosts: join(tmp, 'no-such-file') } });
    await expect(ok.c.open('core-1')).resolves.toBeDefined();
  });

  it("the fleet's known_hosts listing a key the operator revoked, under any host name: refused", async () => {
    const { c } = await connector({ knownHosts: lab.knownHosts([core]), userKnownHosts: revoke(core, 'unrelated.example') });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED', message: expect.stringContaining(core.fingerprint) });
  });

  it('edgectl trust refuses a revoked key and writes no known_hosts (exit 1)', async () => {
    const fleet = fleetName();
    await lab.writeFleet(fleet, { hosts: [core] });
    await writeFile(join(home, '.ssh/known_hosts'), revoke(core));
    try {
      const r = await edgectl(['trust', 'core-1', '--fleet', fleet, '-i', lab.clientKey, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).nodes[0]).toMatchObject({ status: 'failed', error: { code: 'EDGECTL_HOSTKEY_CHANGED' } });
      await expect(readFile(join(fleet, 'known_hosts'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(join(home, '.ssh/known_hosts'));
    }
  });
});

describe("a fleet pin differing from the operator's known_hosts", () => {
  it('a pinned hostKey the operator does not have for that host: EDGECTL_HOSTKEY_CONFLICT naming both fingerprints, no handshake', async () => {
    const { c, user } = await connector({ pin: true, userKnownHosts: `${name(core)} ${other.hostKey}\n` });
    const err = await c.open('core-1').catch((e) => e);
    expect(err.code).toBe('EDGECTL_HOSTKEY_CONFLICT');
    expect(err.message).toContain(core.fingerprint);
    expect(err.message).toContain(other.fingerprint);
    expect(err.message).toContain(user);
    expect(c.stats().handshakes).toBe(0);
  });

  it("the fleet's known_hosts re-pinning a host of the operator's: refused the same way", async () => {
    const { c } = await connector({ knownHosts: lab.knownHosts([core]), userKnownHosts: `${name(core)} ${other.hostKey}\n` });
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CONFLICT' });
  });

  it("a pin the operator's known_hosts agrees with (among other keys of the host) connects, reported as pinned", async () => {
    const { c } = await connector({ pin: true, userKnownHosts: `${name(core)} ${other.hostKey}\n${name(core)} ${core.hostKey}\n` });
    await (await c.open('core-1')).exec(['true']);
    expect(c.hostKeys()).toEqual([expect.objectContaining({ status: 'pinned', fingerprint: core.fingerprint })]);
  });
});

describe("the fleet's known_hosts is a file of the fleet's, never a link", () => {
  it('a known_hosts link to another file: refused with --accept-new, and the target is not appended to', async () => {
    const target = join(tmp, 'authorized_keys');
    await writeFile(target, '# the operator\'s file\n');
    const fleet = fleetName();
    await lab.writeFleet(fleet, { hosts: [core] });
    await symlink(target, join(fleet, 'known_hosts'));
    const model = (await loadFleet(fleet).catch((e) => e)) as Error & { code?: string };
    expect(model.code).toBe('EDGECTL_FLEET_INVALID'); // validate names it (fleet-link)
    expect(model.message).toMatch(/known_hosts is a symbolic link/);
    // Past validate (a model from elsewhere), the reader refuses it too.
    const clean = fleetName();
    await lab.writeFleet(clean, { hosts: [core] });
    const c = createConnector({ model: (await loadFleet(clean)).model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, sshConfig: false, agentSocket: false, acceptNew: true, connectRetries: 0 });
    open.push(c);
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_FLEET_INVALID', message: expect.stringMatching(/known_hosts is a symbolic link/) });
    const trust = await edgectl(['trust', 'core-1', '--fleet', fleet, '-i', lab.clientKey]);
    expect(trust.code).toBe(1);
    expect(await readFile(target, 'utf8')).toBe('# the operator\'s file\n');
  });

  it('a known_hosts FIFO does not block: a coded error at once', async () => {
    const fleet = fleetName();
    await lab.writeFleet(fleet, { hosts: [core] });
    execFileSync('mkfifo', [join(fleet, 'known_hosts')]);
    const r = await edgectl(['trust', 'core-1', '--fleet', fleet, '-i', lab.clientKey]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/known_hosts.*\[EDGECTL_FLEET_INVALID\]/);
  });
});

describe('key files are regular files of at most 64 KiB, checked before reading', () => {
  const keyCases: { what: string; make: () => Promise<string>; says: RegExp }[] = [
    { what: '/dev/zero', make: async () => '/dev/zero', says: /\/dev\/zero is a character device, not a regular file/ },
    { what: 'a FIFO with no writer', make: async () => { const p = join(tmp, 'key-fifo'); execFileSync('mkfifo', [p]); return p; }, says: /key-fifo is a FIFO/ },
    { what: 'a 64 MiB file', make: async () => { const p = join(tmp, 'key-huge'); await writeFile(p, ''); await truncate(p, 64 * 1024 * 1024); return p; }, says: /key-huge is 67108864 bytes, more than the 65536 allowed/ },
    { what: 'a directory', make: async () => { const p = join(tmp, 'key-dir'); await mkdir(p); return p; }, says: /key-dir is a directory/ },
  ];
  for (const k of keyCases) {
    it(`-i ${k.what}: EDGECTL_KEY_FILE at once, no hang, no crash`, async () => {
      const fleet = fleetName();
      await lab.writeFleet(fleet, { hosts: [core], knownHosts: true });
      const key = await k.make();
      const started = Date.now();
      const r = await edgectl(['trust', 'core-1', '--fleet', fleet, '-i', key, '--json']);
      expect(r.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(20_000);
      const [res] = JSON.parse(r.stdout).nodes;
      expect(res.error ?? { code: 'none', message: res.warning }).toMatchObject({ code: 'EDGECTL_KEY_FILE', message: expect.stringMatching(k.says) });
    });
  }

  it('identityFile in the fleet naming a FIFO: the node fails with EDGECTL_KEY_FILE; /dev/zero there does not validate', async () => {
    const fifo = join(tmp, 'fleet-key-fifo');
    execFileSync('mkfifo', [fifo]);
    const fleet = fleetName();
    await lab.writeFleet(fleet, { hosts: [core], knownHosts: true });
    const doc = (await readFile(join(fleet, 'nodes.yaml'), 'utf8')).replace('"ssh":{', `"ssh":{"identityFile":"${fifo}",`);
    await writeFile(join(fleet, 'nodes.yaml'), doc);
    const c = createConnector({ model: (await loadFleet(fleet)).model, fleetRoot: fleet, userKnownHosts: false, sshConfig: false, agentSocket: false, connectRetries: 0 });
    open.push(c);
    await expect(c.open('core-1')).rejects.toMatchObject({ code: 'EDGECTL_KEY_FILE', message: expect.stringContaining(`${fifo} is a FIFO`) });
    await writeFile(join(fleet, 'nodes.yaml'), doc.replace(fifo, '/dev/zero'));
    const v = await edgectl(['validate', '--fleet', fleet]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/spec\.ssh\.identityFile: must name a key file, not a device/);
  });
});
