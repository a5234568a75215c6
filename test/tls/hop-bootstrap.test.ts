import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeIdentity, writeHopFleet } from './helpers.js';
import { initFleetCa, issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { HopServerCert } from '../../src/lib/tls-hop/hop-tls.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { checkedHopKey, nodeHopKey, popContext } from '../../src/lib/bootstrap/hop-key.js';
import { recordHopCert, wantsHopKey } from '../../src/lib/bootstrap/hop-cert.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { resolvedNodes } from '../../src/lib/fleet/model.js';

/**
 * Bootstrap's hop certificate, in its two halves: the key made on the node by the agent's
 * Node.js (a real exec of the on-node script into a directory root, as bootstrap runs it after
 * the install) and its public half signed by the fleet CA into the fleet. The full bootstrap
 * (systemd in nspawn) runs the same two calls.
 */
let dir: string, fleet: string, idFile: string, otherId: string;
const pub = (pem: Buffer | string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-hopboot-'));
  fleet = path.join(dir, 'fleet');
  await mkdir(fleet);
  const id = await makeIdentity(path.join(dir, 'id.txt'));
  idFile = id.file;
  otherId = (await makeIdentity(path.join(dir, 'other.txt'))).file;
  await writeHopFleet(fleet, { recipient: id.recipient, tls: '{ port: 8443 }' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bootstrap: the hop key born on the node, its certificate signed by the fleet CA', { timeout: 120_000 }, () => {
  it('the key is made on the node (0600, P-256) only once; only its public half comes back, with a proof the node holds it', async () => {
    const root = path.join(dir, 'relay-root');
    const t = new LocalTransport('relay-1', root);
    const a = await nodeHopKey(t, 'relay-1', root, process.execPath);
    expect(a.changed).toEqual(['hop-key']);
    const file = path.join(root, 'secrets', 'hop-key.pem');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, 'secrets'))).mode & 0o777).toBe(0o700);
    const key = createPrivateKey(await readFile(file));
    expect(key.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(a.spki.equals(key.export({ format: 'der', type: 'pkcs8' }))).toBe(false);
    const b = await nodeHopKey(t, 'relay-1', root, process.execPath);
    expect(b.changed).toEqual([]);
    expect(b.spki.equals(a.spki)).toBe(true);
    // An answer whose signature is not over our context (a replay, or another node's): refused.
    const spki = a.spki.toString('base64');
    expect(() => checkedHopKey('relay-1', spki, Buffer.alloc(70, 1).toString('base64'), popContext('relay-1', 'x'))).toThrow(/does not verify/);
    expect(() => checkedHopKey('relay-1', 'not base64!', 'x', 'y')).toThrow(/is not base64/);
  });

  it('without a fleet CA no hop key is made; with one, relays and core nodes only', async () => {
    await initFleetCa({ fleet });
    const nodes = resolvedNodes((await loadFleet(fleet)).model);
    await mkdir(path.join(dir, 'no-ca'));
    expect(wantsHopKey(path.join(dir, 'no-ca'), nodes.get('relay-1')!)).toBe(false);
    expect([...nodes.values()].filter((n) => wantsHopKey(fleet, n)).map((n) => n.name).sort()).toEqual(['core-1', 'relay-1']);
  });

  it('a CA key that cannot be decrypted: a clear error, nothing written', async () => {
    const { model } = await loadFleet(fleet);
    const root = path.join(dir, 'relay-root');
    const k = await nodeHopKey(new LocalTransport('relay-1', root), 'relay-1', root, process.execPath);
    const e = await recordHopCert({ fleetRoot: fleet, model, node: resolvedNodes(model).get('relay-1')!, spki: k.spki, secrets: secretOpener({ flag: otherId, env: {} }) }).catch((x) => x);
    expect(e.message).toMatch(/cannot decrypt tls\/fleet-ca\.key\.age: the age identity .* is not one of its recipients/);
    await expect(stat(path.join(fleet, 'tls/hops/relay-1.pem'))).rejects.toThrow();
  });

  it('signs the node\'s own key for the host its senders dial; a second run keeps it; render points the listener at the node\'s key', async () => {
    const { model } = await loadFleet(fleet);
    const root = path.join(dir, 'relay-root');
    const k = await nodeHopKey(new LocalTransport('relay-1', root), 'relay-1', root, process.execPath);
    const secrets = secretOpener({ flag: idFile, env: {} });
    const relay = resolvedNodes(model).get('relay-1')!;
    const first = await recordHopCert({ fleetRoot: fleet, model, node: relay, spki: k.spki, secrets });
    expect(first).toMatchObject({ cert: 'tls/hops/relay-1.pem', outcome: 'issued', keyOn: 'node' });
    const certPem = await readFile(path.join(fleet, 'tls/hops/relay-1.pem'));
    expect(pub(certPem).equals(k.spki)).toBe(true);
    const c = new X509Certificate(certPem);
    expect(c.checkIP('198.51.100.7')).toBe('198.51.100.7');
    expect(c.verify(new X509Certificate(await readFile(path.join(fleet, 'tls/fleet-ca.pem'))).publicKey)).toBe(true);
    await expect(stat(path.join(fleet, 'tls/hops/relay-1.key.age'))).rejects.toThrow();
    // Idempotent: the same key, a valid certificate: nothing written.
    const before = (await stat(path.join(fleet, 'tls/hops/relay-1.pem'))).mtimeMs;
    const again = await recordHopCert({ fleetRoot: fleet, model, node: relay, spki: k.spki, secrets: secretOpener({ flag: otherId, env: {} }) });
    expect(again.outcome).toBe('kept');
    expect((await stat(path.join(fleet, 'tls/hops/relay-1.pem'))).mtimeMs).toBe(before);
    // The pair the agent's TLS listener loads: the fleet's certificate and the node's key.
    await expect(new HopServerCert(path.join(fleet, 'tls/hops/relay-1.pem'), path.join(root, 'secrets', 'hop-key.pem')).load()).resolves.toBe(true);
    // render: only the certificate ships; forwardTls.keyFile is the node's key.
    await issueHopCert({ fleet, node: 'core-1', names: ['hub.t.example'], secrets });
    const r = await cli(['render', '--fleet', fleet, '--out', path.join(dir, 'out')], { env: { EDGECTL_AGE_IDENTITY_FILE: idFile } });
    expect(r.code, r.stderr).toBe(0);
    const aj = JSON.parse(await readFile(path.join(dir, 'out', 'relay-1', 'agent', 'agent.json'), 'utf8'));
    expect(aj.forwardTls.keyFile).toBe('/var/lib/edgectl/secrets/hop-key.pem');
  });

  it('a node whose key changed (reinstalled), or a certificate that is due: issued again for the node\'s key', async () => {
    const { model } = await loadFleet(fleet);
    const relay = resolvedNodes(model).get('relay-1')!;
    const secrets = secretOpener({ flag: idFile, env: {} });
    const root = path.join(dir, 'relay-root-2');
    const k = await nodeHopKey(new LocalTransport('relay-1', root), 'relay-1', root, process.execPath);
    expect((await recordHopCert({ fleetRoot: fleet, model, node: relay, spki: k.spki, secrets })).outcome).toBe('issued');
    expect(pub(await readFile(path.join(fleet, 'tls/hops/relay-1.pem'))).equals(k.spki)).toBe(true);
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets, sameKey: true, days: 10 });
    const due = await recordHopCert({ fleetRoot: fleet, model, node: relay, spki: k.spki, secrets });
    expect(due.outcome).toBe('issued');
    expect(due.daysLeft).toBeGreaterThan(360);
    // A certificate whose key the fleet holds (ca issue without --csr, for a node with none yet) and is valid: bootstrap leaves it.
    await rm(path.join(fleet, 'tls/hops/relay-1.pem'));
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets });
    const kept = await recordHopCert({ fleetRoot: fleet, model, node: relay, spki: k.spki, secrets });
    expect(kept).toMatchObject({ outcome: 'kept', keyOn: 'fleet' });
    await stat(path.join(fleet, 'tls/hops/relay-1.key.age'));
  });
});
