import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { killNginx } from '../apply/helpers.js';
import { waitFor } from '../agent/helpers.js';
import { makeIdentity, writeHopFleet } from './helpers.js';
import { initFleetCa } from '../../src/lib/tls-hop/fleet-ca.js';
import { nodeHopKey } from '../../src/lib/bootstrap/hop-key.js';
import { recordHopCert } from '../../src/lib/bootstrap/hop-cert.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { resolvedNodes } from '../../src/lib/fleet/model.js';
import { issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { BIN, REPO } from '../helpers/paths.js';

/**
 * Renewal on apply: a relay's hop certificate (its key born on the node, as bootstrap makes it)
 * with 10 days left. plan without an identity warns and goes on; plan with one says apply renews
 * it and writes nothing; apply renews it (same key, a year), writes it into the fleet's working
 * tree, ships it (no --allow-dirty needed for that change alone) and the relay's real agent serves
 * it on its TLS forward listener; a second apply renews nothing. Real nginx (--local), 127.0.32.x.
 */
const ADDR = '127.0.32.10';
let dir: string, fleet: string, nodes: string, idFile: string;
let PORTS: LocalPortBlock;
let TLS_PORT: number;
let relayAgent: ReturnType<typeof spawn> | undefined;
const relayLog: string[] = [];
let spki: Buffer;
const git = (...args: string[]) => execFileSync('git', ['-C', fleet, ...args], { encoding: 'utf8' });
const spkiOf = (pem: Buffer | string) => new X509Certificate(pem).publicKey.export({ format: 'der', type: 'spki' });
const local = () => ['--local', nodes, ...PORTS.flags, '--local-address', ADDR];
const outputs: string[] = [];
const run = async (args: string[], o: Parameters<typeof cli>[1] = {}) => {
  const r = await cli(args, o);
  outputs.push(r.stdout, r.stderr);
  return r;
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-hoprenew-'));
  await chmod(dir, 0o755);
  fleet = path.join(dir, 'fleet');
  nodes = path.join(dir, 'nodes');
  await mkdir(fleet);
  const id = await makeIdentity(path.join(dir, 'id.txt'));
  idFile = id.file;
  PORTS = await localPortBlock(['relay-r'], ADDR);
  TLS_PORT = PORTS.of('relay-r').hopTls; // local mode: the relay's own TLS port (spec.hops.tls.port is for real nodes)
  await writeFile(path.join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeHopFleet(fleet, { recipient: id.recipient, hubUrl: `https://hub.t.example:${TLS_PORT}/v1/forward`, tls: '{ port: 8443 }', nodes: 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-r }\nspec: { role: relay, address: 192.0.2.60 }\n' });
  await initFleetCa({ fleet });
  // The relay's key, born in its (local-mode) root as bootstrap makes it; its certificate due in 10 days.
  const root = path.join(nodes, 'relay-r');
  spki = (await nodeHopKey(new LocalTransport('relay-r', root), 'relay-r', root, process.execPath)).spki;
  const { model } = await loadFleet(fleet);
  const secrets = secretOpener({ flag: idFile, env: {} });
  await recordHopCert({ fleetRoot: fleet, model, node: resolvedNodes(model).get('relay-r')!, spki, secrets });
  // In --local mode its senders dial the local address: the certificate names it (docs/tls.md, Known limits).
  await issueHopCert({ fleet, node: 'relay-r', names: ['192.0.2.60', ADDR], secrets, sameKey: true, days: 10 });
  git('init', '-q');
  git('add', '-A');
  git('-c', 'user.name=t', '-c', 'user.email=t@t.example', 'commit', '-qm', 'fleet');
}, 120_000);

afterAll(async () => {
  relayAgent?.kill('SIGKILL');
  if (dir) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('apply renews a hop certificate due within 30 days', { timeout: 180_000 }, () => {
  it('plan without an identity: a warning naming the node, the days and ca renew; nothing written', async () => {
    const r = await run(['plan', '--fleet', fleet, ...local(), '--json'], { env: { EDGECTL_AGE_IDENTITY_FILE: path.join(dir, 'none.txt'), HOME: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/hop certificate of relay-r expires in (9|10) days; run edgectl ca renew/);
    expect(r.stderr).toMatch(/not renewed here: cannot read the age identity file/);
    expect(JSON.parse(r.stdout).hopCertificates).toMatchObject([{ node: 'relay-r', cert: 'tls/hops/relay-r.pem', outcome: 'not-renewed' }]);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('plan with an identity: apply renews it; still nothing written', async () => {
    const r = await run(['plan', '--fleet', fleet, ...local(), '--age-identity', idFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/hop certificate of relay-r expires in (9|10) days: apply renews it/);
    expect(JSON.parse(r.stdout).hopCertificates).toMatchObject([{ node: 'relay-r', outcome: 'due' }]);
    // At a git revision: never a write to the working tree, a warning instead.
    const rev = await run(['plan', '--fleet', fleet, ...local(), '--age-identity', idFile, '--rev', 'HEAD', '--json']);
    expect(rev.code, rev.stderr).toBe(0);
    expect(JSON.parse(rev.stdout).hopCertificates).toMatchObject([{ node: 'relay-r', outcome: 'not-renewed', reason: expect.stringMatching(/git revision/) }]);
    expect(rev.stderr).toMatch(/hop certificate of relay-r expires in (9|10) days; run edgectl ca renew/);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('apply renews it for the same key, writes it into the fleet, ships it, and the relay\'s agent serves it', async () => {
    const r = await run(['apply', '--fleet', fleet, ...local(), '--age-identity', idFile, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.hopCertificates).toMatchObject([{ node: 'relay-r', outcome: 'renewed' }]);
    expect(r.stderr).toMatch(/renewed tls\/hops\/relay-r\.pem \(relay-r, until .*\): in this apply's release of relay-r; review and commit it/);
    const fleetCert = await readFile(path.join(fleet, 'tls/hops/relay-r.pem'));
    const c = new X509Certificate(fleetCert);
    expect((Date.parse(c.validTo) - Date.now()) / 86_400_000).toBeGreaterThan(360);
    expect(spkiOf(fleetCert).equals(spki)).toBe(true);
    expect(c.subjectAltName).toBe('IP Address:192.0.2.60, IP Address:127.0.32.10'); // its names kept
    expect(git('status', '--porcelain').trim()).toBe('M tls/hops/relay-r.pem');
    const cur = path.join(nodes, 'relay-r', 'current');
    expect(await readFile(path.join(cur, 'agent', 'tls', 'hop.pem'))).toEqual(fleetCert);
    const cfgFile = path.join(cur, 'agent', 'agent.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
    expect(cfg.forwardTls.keyFile).toBe(path.join(nodes, 'relay-r', 'secrets', 'hop-key.pem'));
    expect(cfg.forwardTls.listen).toBe(`${ADDR}:${TLS_PORT}`);
    // The relay's real agent: its TLS listener serves the renewed certificate, verified against the fleet CA.
    relayAgent = spawn(process.execPath, [BIN, 'agent', '--config', cfgFile, '--heartbeat-seconds', '0'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    relayAgent.stderr!.setEncoding('utf8').on('data', (d: string) => relayLog.push(d));
    const ca = await readFile(path.join(fleet, 'tls/fleet-ca.pem'));
    const served = () => new Promise<string | undefined>((resolve) => {
      const req = https.request({ host: ADDR, port: TLS_PORT, path: '/healthz', ca, agent: false, timeout: 5000 }, (res) => {
        const fp = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? fp : undefined));
      });
      req.on('error', () => resolve(undefined));
      req.end();
    });
    let fp: string | undefined;
    await waitFor(async () => (fp = await served()) !== undefined, 60_000, `the relay's TLS listener\n${relayLog.join('')}`, 250);
    expect(fp).toBe(c.fingerprint256);
  });

  it('once committed, a second apply renews nothing and writes nothing', async () => {
    git('-c', 'user.name=t', '-c', 'user.email=t@t.example', 'commit', '-qam', 'renewed hop certificate');
    const before = await readFile(path.join(fleet, 'tls/hops/relay-r.pem'));
    const r = await run(['apply', '--fleet', fleet, ...local(), '--age-identity', idFile, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).hopCertificates).toBeUndefined();
    expect(await readFile(path.join(fleet, 'tls/hops/relay-r.pem'))).toEqual(before);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('a fleet with other uncommitted changes: not renewed (a warning), and the apply refused as dirty', async () => {
    await issueHopCert({ fleet, node: 'relay-r', names: ['192.0.2.60', ADDR], secrets: secretOpener({ flag: idFile, env: {} }), sameKey: true, days: 5 });
    git('-c', 'user.name=t', '-c', 'user.email=t@t.example', 'commit', '-qam', 'due again');
    await writeFile(path.join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n# an edit\n');
    const before = await readFile(path.join(fleet, 'tls/hops/relay-r.pem'));
    const r = await run(['apply', '--fleet', fleet, ...local(), '--age-identity', idFile, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hop certificate of relay-r expires in [45] days; run edgectl ca renew \(not renewed here: the fleet has uncommitted changes/);
    expect(r.stderr).toMatch(/the fleet has uncommitted changes .*would get a release that is in no commit/);
    expect(await readFile(path.join(fleet, 'tls/hops/relay-r.pem'))).toEqual(before);
  });

  it('no output of plan or apply holds a byte of the fleet CA\'s key or the relay\'s hop key', async () => {
    const { createPrivateKey } = await import('node:crypto');
    const ca = (await secretOpener({ flag: idFile, env: {} }).open('tls/fleet-ca.key.age', await readFile(path.join(fleet, 'tls/fleet-ca.key.age')))).toString('utf8');
    const hop = await readFile(path.join(nodes, 'relay-r', 'secrets', 'hop-key.pem'), 'utf8');
    const all = outputs.join('\n') + relayLog.join('');
    expect(outputs.length).toBeGreaterThan(8);
    for (const pem of [ca, hop]) {
      const d = Buffer.from(createPrivateKey(pem).export({ format: 'jwk' }).d!, 'base64url');
      for (const spelled of [d.toString('hex'), d.toString('base64').replace(/=+$/, ''), d.toString('base64url'), pem.split('\n')[1]]) expect(all).not.toContain(spelled);
    }
  });
});
