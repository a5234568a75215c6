import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';

/**
 * A node with sshd and Node.js but no systemd running (a lab host: this machine's own init is not
 * systemd): bootstrap says so, points at the fallback, and installs nothing.
 */
let lab: Lab;
let host: LabHost;
let dir: string;
let fleet: string;
let home: string;

beforeAll(async () => {
  lab = await createLab();
  host = await lab.addHost('plain-1');
  dir = await mkdtemp(join(tmpdir(), 'ec-bootstrap-nosd-'));
  home = join(dir, 'home');
  await mkdir(home);
  fleet = join(dir, 'fleet');
  await lab.writeFleet(fleet, { knownHosts: true });
}, 60_000);

afterAll(async () => {
  await lab?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl bootstrap on a node without systemd', { timeout: 60_000 }, () => {
  it('fails clearly, names the fallback, and installs nothing', async () => {
    expect(existsSync('/run/systemd/system'), 'this test needs a machine whose init is not systemd').toBe(false);
    const r = await cli(['bootstrap', 'plain-1', '--fleet', fleet, '-i', lab.clientKey, '--yes', '--json'], { home });
    expect(r.code).toBe(1);
    expect(json(r).nodes[0]).toMatchObject({
      node: 'plain-1',
      status: 'failed',
      error: { code: 'EDGECTL_BOOTSTRAP', message: 'plain-1: the node does not run systemd (no systemctl, or /run/systemd/system missing)', hint: expect.stringContaining('Nodes without systemd') },
    });
    expect(existsSync(join(host.root, 'agent'))).toBe(false);
    expect(existsSync(join(host.root, 'secrets'))).toBe(false);
    expect(existsSync('/etc/systemd/system/edgectl-agent.service')).toBe(false);
  });
});
