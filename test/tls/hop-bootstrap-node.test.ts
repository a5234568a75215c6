import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { bootNode, type NspawnNode } from '../helpers/nspawn.js';
import { makeIdentity, writeHopFleet } from './helpers.js';
import { initFleetCa } from '../../src/lib/tls-hop/fleet-ca.js';

/**
 * `edgectl bootstrap` of a relay on a real systemd node (nspawn, over real sshd) in a fleet with a
 * CA: the hop key is made on the node, its certificate signed here into the fleet. Without an
 * identity that decrypts the CA key the node is still installed, bootstrap says why and exits 1;
 * with one the certificate is issued for the node's key; a third run changes nothing.
 */
const ROOT = '/srv/edgectl';
let dir: string, fleet: string, key: string, home: string, idFile: string;
let node: NspawnNode;
const edgectl = (args: string[], env: Record<string, string> = {}) => cli([...args, '--fleet', fleet, '-i', key], { home, timeout: 240_000, env: { EDGECTL_AGE_IDENTITY_FILE: join(dir, 'none.txt'), ...env } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-hopboot-node-'));
  home = join(dir, 'home');
  key = join(dir, 'id_ed25519');
  await mkdir(home);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-test', '-f', key]);
  node = await bootNode({ name: 'ec-hopboot', authorizedKey: await readFile(`${key}.pub`, 'utf8'), log: (s) => process.stderr.write(`${s}\n`) });
  fleet = join(dir, 'fleet');
  await mkdir(fleet);
  const id = await makeIdentity(join(dir, 'id.txt'));
  idFile = id.file;
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeHopFleet(fleet, { recipient: id.recipient, nodes: `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: r1 }\nspec: { role: relay, address: ${node.address}, ssh: { user: root, port: 22 }, root: ${ROOT} }\n` });
  await initFleetCa({ fleet });
}, 1_500_000);

afterAll(async () => {
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('bootstrap issues a relay\'s hop certificate for a key born on the node', { timeout: 300_000 }, () => {
  it('without an identity for the CA key: installed, the hop key made, no certificate, a clear error, exit 1', async () => {
    { const r = await edgectl(['trust', 'r1']); expect(r.code, r.stderr).toBe(0); }
    const r = await edgectl(['bootstrap', 'r1', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ node: 'r1', status: 'installed', hopCertError: expect.stringMatching(/cannot (decrypt|read the age identity file).*fleet-ca\.key\.age|age identity/) });
    expect(res.changed).toContain('hop-key');
    expect((await node.exec(['stat', '-c', '%a', `${ROOT}/secrets/hop-key.pem`])).stdout.trim()).toBe('600');
    expect((await node.exec(['systemctl', 'is-active', 'edgectl-agent.service'])).stdout.trim()).toBe('active');
    await expect(stat(join(fleet, 'tls/hops/r1.pem'))).rejects.toThrow();
    const text = await edgectl(['bootstrap', 'r1', '--yes']);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/r1: its hop certificate was not issued: .*the node is installed/);
    expect(text.stderr).not.toMatch(/\n\s+at /);
  });

  it('with the identity: the certificate is issued for the node\'s own key; a third run writes nothing', async () => {
    const r = await edgectl(['bootstrap', 'r1', '--yes', '--json', '--age-identity', idFile]);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ status: 'unchanged', changed: [], hopCert: { cert: 'tls/hops/r1.pem', outcome: 'issued', keyOn: 'node' } });
    const cert = new X509Certificate(await readFile(join(fleet, 'tls/hops/r1.pem')));
    expect(cert.checkIP(node.address)).toBe(node.address);
    // The node's key (read here only to compare public halves) is the certificate's.
    const nodeKey = createPrivateKey((await node.exec(['cat', `${ROOT}/secrets/hop-key.pem`])).stdout);
    expect(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(createPublicKey(nodeKey).export({ format: 'der', type: 'spki' }))).toBe(true);
    expect(cert.checkPrivateKey(nodeKey)).toBe(true);
    await expect(stat(join(fleet, 'tls/hops/r1.key.age'))).rejects.toThrow();
    const before = (await stat(join(fleet, 'tls/hops/r1.pem'))).mtimeMs;
    const again = await edgectl(['bootstrap', 'r1', '--yes', '--json', '--age-identity', idFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(json(again).nodes[0]).toMatchObject({ status: 'unchanged', changed: [], hopCert: { outcome: 'kept' } });
    expect((await stat(join(fleet, 'tls/hops/r1.pem'))).mtimeMs).toBe(before);
    // validate, without any identity: the relay's certificate chains to the fleet CA and names its host.
    const v = await cli(['validate', '--fleet', fleet, '--json'], { home });
    expect(JSON.parse(v.stdout).problems.filter((p: { rule: string }) => p.rule.startsWith('hop-'))).toEqual([]);
  });
});
