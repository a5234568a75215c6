import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

let lab: Lab;
let core: LabHost;
let relay: LabHost;
let edge: LabHost;
let fleet: string;
let home: string;

/** `edgectl trust` as an operator runs it: real CLI, real sshd, HOME pointed at an empty dir. */
const edgectl = (args: string[]) => cli(args, { home });

beforeAll(async () => {
  lab = await createLab();
  core = await lab.addHost('core-1');
  relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  fleet = await mkdtemp(join(tmpdir(), 'ec-trust-'));
  home = await mkdtemp(join(tmpdir(), 'ec-home-'));
  await lab.writeFleet(fleet);
});
afterAll(async () => {
  await lab?.close();
  for (const d of [fleet, home]) if (d) await rm(d, { recursive: true, force: true });
});

describe('edgectl trust', () => {
  it('records the keys of a relay and the node behind it, shows fingerprints, and is idempotent', async () => {
    const r = await edgectl(['trust', 'relay-1', 'edge-1', '--fleet', fleet, '-i', lab.clientKey]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(relay.fingerprint);
    expect(r.stdout).toContain(edge.fingerprint);
    expect(r.stdout).toContain('recorded');
    const kh = await readFile(join(fleet, 'known_hosts'), 'utf8');
    expect(kh).toBe(`${relay.address} ${relay.hostKey}\n${edge.address} ${edge.hostKey}\n`);
    const again = await edgectl(['trust', 'relay-1', 'edge-1', '--fleet', fleet, '-i', lab.clientKey, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).nodes.map((n: { status: string }) => n.status)).toEqual(['known', 'known']);
    expect(await readFile(join(fleet, 'known_hosts'), 'utf8')).toBe(kh);
  });

  it('refuses to overwrite a different recorded key (exit 1, file untouched)', async () => {
    const wrong = `[${core.address}]:${core.port} ${relay.hostKey}\n`;
    const f2 = await mkdtemp(join(tmpdir(), 'ec-trust2-'));
    try {
      await lab.writeFleet(f2, { hosts: [core] });
      await writeFile(join(f2, 'known_hosts'), wrong);
      const r = await edgectl(['trust', 'core-1', '--fleet', f2, '-i', lab.clientKey, '--json']);
      expect(r.code).toBe(1);
      const [res] = JSON.parse(r.stdout).nodes;
      expect(res).toMatchObject({ node: 'core-1', status: 'failed', error: { code: 'EDGECTL_HOSTKEY_CHANGED' } });
      expect(res.error.message).toContain(core.fingerprint);
      expect(await readFile(join(f2, 'known_hosts'), 'utf8')).toBe(wrong);
    } finally {
      await rm(f2, { recursive: true, force: true });
    }
  });

  it('an unknown node name is a usage error', async () => {
    const r = await edgectl(['trust', 'nope', '--fleet', fleet]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no node named "nope"');
  });

  it('a repeatable flag takes one value per use: `-i KEY NODE` leaves NODE a node name, not a second key', async () => {
    const r = await edgectl(['trust', '--fleet', fleet, '-i', join(fleet, 'no-such-key'), 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no node named "nope"');
    expect(r.stderr).not.toContain('Missing 1 required arg');
  });
});
