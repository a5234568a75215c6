import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeIdentity, writeHopFleet } from './helpers.js';
import { initFleetCa, issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';

/**
 * spec.hops.tls in render: relays and core nodes get a TLS forward listener with the hop
 * certificate from the fleet (key decrypted, 0600), every forwarding node the fleet CA pinned in
 * agent.json and https:// upstreams; a missing, foreign or misnamed certificate stops the render.
 */
let dir: string, fleet: string, idFile: string;
const env = () => ({ EDGECTL_AGE_IDENTITY_FILE: idFile });
const render = (out: string) => cli(['render', '--fleet', fleet, '--out', path.join(dir, out)], { env: env() });
const agentJson = async (out: string, node: string) => JSON.parse(await readFile(path.join(dir, out, node, 'agent', 'agent.json'), 'utf8'));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-hoprender-'));
  fleet = path.join(dir, 'fleet');
  await mkdir(fleet);
  const id = await makeIdentity(path.join(dir, 'id.txt'));
  idFile = id.file;
  await writeHopFleet(fleet, { recipient: id.recipient, tls: '{ port: 8443 }' });
  await initFleetCa({ fleet });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('render with spec.hops.tls', { timeout: 120_000 }, () => {
  it('without hop certificates: refused, naming the node and the command that issues one', async () => {
    const r = await render('out0');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/node (core-1|relay-1): no hop certificate/);
    expect(r.stderr).toMatch(/edgectl ca issue/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a certificate for another host than the one its senders dial: refused', async () => {
    const secrets = secretOpener({ flag: idFile, env: {} });
    await issueHopCert({ fleet, node: 'core-1', names: ['hub.t.example'], secrets });
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.99'], secrets });
    const r = await render('out1');
    expect(r.code).toBe(1);
    // validate's rule (the fleet is invalid before render runs): the file, the node, the host.
    expect(r.stderr).toMatch(/tls\/hops\/relay-1\.pem:1:1 tls\/hops\/relay-1\.pem \(node relay-1\) does not name 198\.51\.100\.7/);
  });

  it('ships each hop its certificate and key (0600), pins the fleet CA, and points every forward at https://', async () => {
    const secrets = secretOpener({ flag: idFile, env: {} });
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets });
    const r = await render('out2');
    expect(r.code, r.stderr).toBe(0);
    const ca = await readFile(path.join(fleet, 'tls/fleet-ca.pem'), 'utf8');
    const edge = await agentJson('out2', 'edge-1');
    expect(edge.upstreams).toEqual(['https://198.51.100.7:8443/v1/forward']);
    expect(edge.upstreamCa).toBe(ca);
    expect(edge.forwardTls).toBeUndefined();
    const relay = await agentJson('out2', 'relay-1');
    expect(relay.upstreams).toEqual(['https://hub.t.example/v1/forward']);
    expect(relay.upstreamCa).toBe(ca);
    expect(relay.forwardTls).toEqual({ listen: '0.0.0.0:8443', certFile: '/var/lib/edgectl/current/agent/tls/hop.pem', keyFile: '/var/lib/edgectl/current/agent/tls/hop.key.pem' });
    const core = await agentJson('out2', 'core-1');
    expect(core.forwardTls.listen).toBe('0.0.0.0:8443');
    expect(core.upstreamCa).toBeUndefined();
    const keyFile = path.join(dir, 'out2', 'relay-1', 'agent', 'tls', 'hop.key.pem');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const key = await readFile(keyFile);
    expect(createPrivateKey(key).asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(await readFile(path.join(dir, 'out2', 'relay-1', 'agent', 'tls', 'hop.pem'), 'utf8')).toBe(await readFile(path.join(fleet, 'tls/hops/relay-1.pem'), 'utf8'));
    // An edge listens for no forwards: it gets no hop key.
    await expect(stat(path.join(dir, 'out2', 'edge-1', 'agent', 'tls'))).rejects.toThrow();
    // Nothing render printed holds the key.
    const d = Buffer.from(createPrivateKey(key).export({ format: 'jwk' }).d!, 'base64url');
    for (const s of [d.toString('hex'), d.toString('base64').replace(/=+$/, ''), key.toString('utf8').split('\n')[1]]) expect(r.stdout + r.stderr).not.toContain(s);
  });

  it('ca renew issues only what is due; ca issue takes the names from the fleet', async () => {
    const kept = await cli(['ca', 'renew', '--fleet', fleet, '--json'], { env: env() });
    expect(kept.code, kept.stderr).toBe(0);
    expect(JSON.parse(kept.stdout).certificates.map((c: { node: string; issued: boolean }) => [c.node, c.issued])).toEqual([['core-1', false], ['relay-1', false]]);
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secretOpener({ flag: idFile, env: {} }), days: 10 });
    const due = await cli(['ca', 'renew', '--fleet', fleet, '--json'], { env: env() });
    expect(due.code, due.stderr).toBe(0);
    const certs = JSON.parse(due.stdout).certificates as { node: string; issued: boolean; daysLeft: number; names: string[] }[];
    expect(certs.map((c) => [c.node, c.issued])).toEqual([['core-1', false], ['relay-1', true]]);
    expect(certs[1]).toMatchObject({ names: ['198.51.100.7'] });
    expect(certs[1].daysLeft).toBeGreaterThan(360);
    const byFleet = await cli(['ca', 'issue', 'core-1', '--fleet', fleet, '--json'], { env: env() });
    expect(byFleet.code, byFleet.stderr).toBe(0);
    expect(JSON.parse(byFleet.stdout)).toMatchObject({ node: 'core-1', names: ['hub.t.example'], issued: true });
    const edge = await cli(['ca', 'issue', 'edge-1', '--fleet', fleet], { env: env() });
    expect(edge.code).toBe(1);
    expect(edge.stderr).toMatch(/edge-1 is no relay or core node/);
    expect((await render('out4')).code).toBe(0);
  });

  it('a key born on the node (ca issue --csr): only the certificate is in the fleet and the bundle; renewals re-sign that key', async () => {
    const nodeDir = path.join(dir, 'relay-node');
    await mkdir(nodeDir);
    // On the node: the key never leaves it; the request (public) goes to the operator.
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(nodeDir, 'hop-key.pem'), '-subj', '/CN=relay-1', '-out', path.join(nodeDir, 'hop.csr')], { stdio: 'pipe' });
    const nodeKey = await readFile(path.join(nodeDir, 'hop-key.pem'));
    const r = await cli(['ca', 'issue', 'relay-1', '--fleet', fleet, '--csr', path.join(nodeDir, 'hop.csr'), '--json'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ keyOn: 'node', key: null, names: ['198.51.100.7'], issued: true });
    await expect(stat(path.join(fleet, 'tls/hops/relay-1.key.age'))).rejects.toThrow();
    const pub = (pem: Buffer | string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    const nodePub = createPublicKey(nodeKey).export({ type: 'spki', format: 'der' }).toString('hex');
    expect(pub(await readFile(path.join(fleet, 'tls/hops/relay-1.pem')))).toBe(nodePub);
    const out = await render('out5');
    expect(out.code, out.stderr).toBe(0);
    expect((await agentJson('out5', 'relay-1')).forwardTls.keyFile).toBe('/var/lib/edgectl/secrets/hop-key.pem');
    await expect(stat(path.join(dir, 'out5', 'relay-1', 'agent', 'tls', 'hop.key.pem'))).rejects.toThrow();
    // Due: renewed for the same key, without the node.
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secretOpener({ flag: idFile, env: {} }), days: 10 });
    const renewed = await cli(['ca', 'renew', '--fleet', fleet, '--json'], { env: env() });
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(JSON.parse(renewed.stdout).certificates[1]).toMatchObject({ node: 'relay-1', issued: true, keyOn: 'node' });
    expect(pub(await readFile(path.join(fleet, 'tls/hops/relay-1.pem')))).toBe(nodePub);
    // A request that is not P-256, or not a request at all: refused.
    execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(nodeDir, 'rsa.key'), '-subj', '/CN=relay-1', '-out', path.join(nodeDir, 'rsa.csr')], { stdio: 'pipe' });
    const rsa = await cli(['ca', 'issue', 'relay-1', '--fleet', fleet, '--csr', path.join(nodeDir, 'rsa.csr')], { env: env() });
    expect(rsa.code).toBe(1);
    expect(rsa.stderr).toMatch(/not for an ECDSA P-256 key/);
    const junk = await cli(['ca', 'issue', 'relay-1', '--fleet', fleet, '--csr', path.join(nodeDir, 'hop-key.pem')], { env: env() });
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/not a PEM certificate request/);
    expect(junk.stdout + junk.stderr).not.toContain(nodeKey.toString('utf8').split('\n')[1]);
  });

  it('a plain http:// hub with spec.hops.tls: refused (never plain HTTP on a hop)', async () => {
    const f = path.join(fleet, 'fleet.yaml');
    await writeFile(f, (await readFile(f, 'utf8')).replace('https://hub.t.example', 'http://hub.t.example'));
    const r = await render('out3');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/spec\.hub\.url .* is not https:\/\//);
  });
  it('ca renew keeps a name added by hand (a local-mode address) when it renews what is only due', async () => {
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7', '127.0.32.9'], secrets: secretOpener({ flag: idFile, env: {} }), days: 10 });
    const r = await cli(['ca', 'renew', '--fleet', fleet, '--json'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const relay = (JSON.parse(r.stdout).certificates as { node: string; issued: boolean; names: string[]; daysLeft: number }[]).find((c) => c.node === 'relay-1')!;
    expect(relay).toMatchObject({ issued: true, names: ['198.51.100.7', '127.0.32.9'] });
    expect(new X509Certificate(await readFile(path.join(fleet, 'tls/hops/relay-1.pem'))).subjectAltName).toBe('IP Address:198.51.100.7, IP Address:127.0.32.9');
    const again = await cli(['ca', 'renew', '--fleet', fleet, '--json'], { env: env() });
    expect((JSON.parse(again.stdout).certificates as { node: string; issued: boolean }[]).find((c) => c.node === 'relay-1')!.issued).toBe(false);
  });

  it('a committed symbolic link on the way to tls/hops/NODE.pem: ca issue refuses and writes nothing where it points', async () => {
    const other = path.join(dir, 'linked-fleet');
    const outside = path.join(dir, 'outside');
    await mkdir(other);
    await mkdir(outside);
    const id = await makeIdentity(path.join(dir, 'linked-id.txt'));
    await writeHopFleet(other, { recipient: id.recipient });
    await initFleetCa({ fleet: other });
    await symlink(outside, path.join(other, 'tls', 'hops'));
    const r = await cli(['ca', 'issue', 'relay-1', '--fleet', other], { env: { EDGECTL_AGE_IDENTITY_FILE: id.file } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tls\/hops in the fleet is a symbolic link/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await readdir(outside)).toEqual([]);
  });
});
