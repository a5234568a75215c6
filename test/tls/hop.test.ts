import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AgentProc, credential, depth, killAll, sha, startAgent, status, stopAgent, waitFor } from '../agent/helpers.js';
import { freePortRange } from '../helpers/ports.js';
import { cli, json } from '../helpers/cli.js';
import { makeIdentity } from './helpers.js';
import { issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { createCa, issueServerCert } from '../../src/lib/tls-hop/x509.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';

/**
 * TLS on the uplink hops, real processes: edge-t → relay-t → hub-t (file sink), each forward over
 * HTTPS to the next hop's TLS forward listener, verified against the fleet CA that `edgectl ca
 * init` made and the host of the upstream URL. Certificates that do not verify (another CA,
 * another name, expired) are refused; the sender's spool keeps everything and delivers it,
 * once each, when the right certificate is served (swapped in place: the listener reloads it).
 * Addresses 127.0.17.x are this file's.
 */
const RELAY_IP = '127.0.17.1', HUB_IP = '127.0.17.2', EDGE_IP = '127.0.17.3';
let dir: string;
let fleet: string;
let idFile: string;
let R: number, H: number, E: number;
let relay: AgentProc, hub: AgentProc, edge: AgentProc;
let relayArgs: string[];
/** Every key's plaintext this test saw: none may appear in any output. */
const keys: string[] = [];
const outputs: string[] = [];
const DAY = 86_400_000;

const relayCert = () => path.join(dir, 'relay-node', 'hop.pem');
const relayKey = () => path.join(dir, 'relay-node', 'hop.key.pem');

/** What render/apply does on the node: the cert and its decrypted key, 0600, renamed into place (key first). */
async function install(node: string, cert: string, key: string): Promise<void> {
  const d = path.join(dir, `${node}-node`);
  await writeFile(path.join(d, '.k.tmp'), key, { mode: 0o600 });
  await rename(path.join(d, '.k.tmp'), path.join(d, 'hop.key.pem'));
  await writeFile(path.join(d, '.c.tmp'), cert);
  await rename(path.join(d, '.c.tmp'), path.join(d, 'hop.pem'));
}

/** The fleet's hop certificate for node, as the node gets it (the key decrypted with the operator's identity). */
async function fromFleet(node: string): Promise<{ cert: string; key: string }> {
  const cert = await readFile(path.join(fleet, 'tls', 'hops', `${node}.pem`), 'utf8');
  const opener = secretOpener({ flag: idFile, env: {} });
  const key = (await opener.open(`tls/hops/${node}.key.age`, await readFile(path.join(fleet, 'tls', 'hops', `${node}.key.age`)))).toString('utf8');
  keys.push(key);
  return { cert, key };
}

const post = async (n: number, tag: string) => {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`http://${EDGE_IP}:${E}/v1/q/events`, { method: 'POST', body: `${tag}-${i}`, headers: { authorization: 'Bearer tok' } });
    expect(r.status).toBe(202);
  }
};
const sinkLines = async () => (await readFile(path.join(dir, 'sink.jsonl'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; tenant: string; topic: string; body: string });
const delivered = async (tag: string) => (await sinkLines()).filter((l) => l.tenant === 'acme' && l.body.startsWith(`${tag}-`)).map((l) => l.body).sort();
const expected = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${i}`).sort();

/** A refused phase: the edge sees `state`, keeps the messages, and the relay took none of them. */
async function refusedWith(state: string, tag: string, n: number): Promise<void> {
  const before = (await status(relay)).intake.forwardedAccepted as number;
  await post(n, tag);
  await waitFor(async () => (await status(edge)).forward.tls?.state === state, 30_000, `edge to see tls: ${state}`);
  await new Promise((r) => setTimeout(r, 1500));
  expect(await depth(edge)).toBe(n);
  expect((await status(relay)).intake.forwardedAccepted).toBe(before);
  expect(await delivered(tag)).toEqual([]);
  const s = await status(edge);
  outputs.push(JSON.stringify(s));
  expect(s.forward.lastError.message).toMatch(new RegExp(`TLS: ${state}`));
}

/** After the right certificate is served: every message of the phase reaches the hub, once. */
async function deliveredOnce(tag: string, n: number): Promise<void> {
  await waitFor(async () => (await delivered(tag)).length >= n, 90_000, `${tag} at the hub`, 250);
  await waitFor(async () => (await depth(edge)) === 0, 30_000, 'the edge spool to drain');
  expect(await delivered(tag)).toEqual(expected(tag, n));
  expect((await status(edge)).forward.tls.state).toBe('ok');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-hoptls-'));
  fleet = path.join(dir, 'fleet');
  for (const d of ['fleet', 'relay-node', 'hub-node']) await import('node:fs/promises').then((f) => f.mkdir(path.join(dir, d), { recursive: true }));
  const id = await makeIdentity(path.join(dir, 'operator.age'));
  idFile = id.file;
  await writeFile(path.join(fleet, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: hoptls }\nspec:\n  hub: { url: "https://${HUB_IP}:9/v1/forward" }\n  secrets: { recipients: [${id.recipient}] }\n`);
  [R, H, E] = [await freePortRange(3, RELAY_IP), await freePortRange(3, HUB_IP), await freePortRange(2, EDGE_IP)];
}, 60_000);

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('TLS on the uplink hops (fleet CA)', { timeout: 240_000 }, () => {
  it('edgectl ca init writes the CA certificate and its key encrypted, and refuses to replace it', async () => {
    const r = await cli(['ca', 'init', '--fleet', fleet, '--json']);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    const j = json(r);
    expect(j).toMatchObject({ cert: 'tls/fleet-ca.pem', key: 'tls/fleet-ca.key.age', recipients: 1 });
    const ca = new X509Certificate(await readFile(path.join(fleet, 'tls/fleet-ca.pem')));
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect((await readFile(path.join(fleet, 'tls/fleet-ca.key.age'), 'utf8')).startsWith('-----BEGIN AGE ENCRYPTED FILE-----')).toBe(true);
    const caKey = await secretOpener({ flag: idFile, env: {} }).open('tls/fleet-ca.key.age', await readFile(path.join(fleet, 'tls/fleet-ca.key.age')));
    keys.push(caKey.toString('utf8'));
    expect(caKey.toString('utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const again = await cli(['ca', 'init', '--fleet', fleet]);
    outputs.push(again.stdout, again.stderr);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has a CA/);
    expect(again.stderr).not.toMatch(/\n\s+at /);
  });

  it('edgectl ca issue signs a hop certificate for the names given; --if-due keeps one with time left', async () => {
    const env = { EDGECTL_AGE_IDENTITY_FILE: idFile };
    for (const [node, ip] of [['relay-t', RELAY_IP], ['hub-t', HUB_IP]]) {
      const r = await cli(['ca', 'issue', node, '--fleet', fleet, '--name', ip, '--json'], { env });
      outputs.push(r.stdout, r.stderr);
      expect(r.code, r.stderr).toBe(0);
      expect(json(r)).toMatchObject({ node, issued: true, names: [ip], cert: `tls/hops/${node}.pem` });
    }
    const kept = await cli(['ca', 'issue', 'relay-t', '--fleet', fleet, '--name', RELAY_IP, '--if-due', '--json'], { env });
    outputs.push(kept.stdout, kept.stderr);
    expect(json(kept)).toMatchObject({ issued: false });
    expect(json(kept).daysLeft).toBeGreaterThan(360);
    const leaf = new X509Certificate(await readFile(path.join(fleet, 'tls/hops/relay-t.pem')));
    expect(leaf.checkIP(RELAY_IP)).toBe(RELAY_IP);
    expect(leaf.checkIssued(new X509Certificate(await readFile(path.join(fleet, 'tls/fleet-ca.pem'))))).toBe(true);
    const bad = await cli(['ca', 'issue', 'relay-t', '--fleet', fleet, '--name', 'a;b'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a host name or an IP address/);
  });

  it('plain http:// beside the pinned fleet CA refuses to start (never plain HTTP on a hop)', async () => {
    const ca = path.join(fleet, 'tls/fleet-ca.pem');
    const base = ['agent', '--node', 'edge-x', '--role', 'edge', '--listen', `${EDGE_IP}:${E}`, '--admin', `${EDGE_IP}:${E + 1}`, '--data', path.join(dir, 'x'), '--topic', 'acme/events'];
    const mixed = await cli([...base, '--upstream', `https://${RELAY_IP}:${R + 2}`, '--upstream', `http://${RELAY_IP}:${R}`, '--upstream-ca', ca], { timeout: 30_000 });
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toMatch(/plain HTTP but the hops speak TLS/);
    expect(mixed.stderr).not.toMatch(/\n\s+at /);
  });

  it('edge → relay → hub over HTTPS: delivered, verified against the fleet CA', async () => {
    const ca = path.join(fleet, 'tls/fleet-ca.pem');
    const hubPair = await fromFleet('hub-t');
    await install('hub', hubPair.cert, hubPair.key);
    const relayPair = await fromFleet('relay-t');
    // The relay starts with a certificate of another CA, for its right name: refused below.
    const other = await createCa({ name: 'not the fleet CA', days: 30 });
    keys.push(other.keyPem);
    const stranger = await issueServerCert(other, { cn: 'relay-t', names: [RELAY_IP], days: 30 });
    keys.push(stranger.keyPem);
    await install('relay', stranger.certPem, stranger.keyPem);
    const cr = credential(dir, 'relay-t'), ce = credential(dir, 'edge-t');
    const common = ['--topic', 'acme/events', '--heartbeat-seconds', '1'];
    hub = await startAgent('hub-t', H, H + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${path.join(dir, 'sink.jsonl')}`,
      '--forward-tls-listen', `${HUB_IP}:${H + 2}`, '--forward-tls-cert', path.join(dir, 'hub-node', 'hop.pem'), '--forward-tls-key', path.join(dir, 'hub-node', 'hop.key.pem'),
      '--accept-forward', cr.accept('edge-t'), ...common], { host: HUB_IP });
    relayArgs = ['--role', 'relay', '--data', path.join(dir, 'relay'), '--upstream', `https://${HUB_IP}:${H + 2}`, '--upstream-ca', ca, '--credential-file', cr.file,
      '--forward-tls-listen', `${RELAY_IP}:${R + 2}`, '--forward-tls-cert', relayCert(), '--forward-tls-key', relayKey(), '--accept-forward', ce.accept(), ...common];
    relay = await startAgent('relay-t', R, R + 1, relayArgs, { host: RELAY_IP });
    edge = await startAgent('edge-t', E, E + 1, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `https://${RELAY_IP}:${R + 2}`, '--upstream-ca', ca,
      '--credential-file', ce.file, '--token', `acme:${sha('tok')}`, ...common], { host: EDGE_IP });

    // Another CA: refused, nothing lost.
    await refusedWith('untrusted', 'other-ca', 5);
    // The fleet's certificate is swapped in on the running relay: picked up without a restart.
    await install('relay', relayPair.cert, relayPair.key);
    await deliveredOnce('other-ca', 5);
    await post(5, 'ok');
    await deliveredOnce('ok', 5);
    expect((await status(relay)).forward.tls.state).toBe('ok');
    const rs = await status(relay);
    expect(rs.forwardTls).toMatchObject({ lastError: null, subjectAltName: `IP Address:${RELAY_IP}` });
    expect(rs.forwardTls.daysLeft).toBeGreaterThan(360);
    expect(rs.forwardTls.reloads).toBe(2);
    outputs.push(JSON.stringify(rs));
    // Without the pinned CA (the system's roots, for a hub behind a public certificate) the fleet's certificate is not trusted.
    await expect(fetch(`https://${RELAY_IP}:${R + 2}/healthz`)).rejects.toThrow();
  });

  it('a renewed pair that does not load is reported, and the pair in force stays', async () => {
    const good = await fromFleet('relay-t');
    const other = await createCa({ name: 'stray', days: 30 });
    keys.push(other.keyPem);
    // The fleet's certificate with a key that is not its own (a botched copy).
    await install('relay', good.cert, other.keyPem);
    await waitFor(async () => /is not the key of/.test((await status(relay)).forwardTls.lastError ?? ''), 15_000, 'the relay to report the bad pair');
    await post(3, 'bad-pair');
    await deliveredOnce('bad-pair', 3);
    await install('relay', good.cert, good.key);
    await waitFor(async () => (await status(relay)).forwardTls.lastError === null, 15_000, 'the relay to load the good pair again');
  });

  it('the TLS listener serves only the hop API; the hop\'s plain listener refuses /v1/forward', async () => {
    const plain = await fetch(`http://${RELAY_IP}:${R}/v1/forward`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/vnd.edgectl.batch', authorization: 'Bearer nope' } });
    expect(plain.status).toBe(403);
    expect(((await plain.json()) as { error: string }).error).toBe('tls_required');
    // Plain HTTP spoken to the TLS port gets no HTTP answer.
    await expect(fetch(`http://${RELAY_IP}:${R + 2}/v1/forward`, { method: 'POST', body: 'x' })).rejects.toThrow();
    // Over TLS (verified with the fleet CA) the device API is not there: devices go through nginx.
    const { Agent, request } = await import('undici');
    const tlsAgent = new Agent({ connect: { ca: await readFile(path.join(fleet, 'tls/fleet-ca.pem'), 'utf8') } });
    try {
      const r = await request(`https://${RELAY_IP}:${R + 2}/v1/q/events`, { method: 'POST', body: 'x', dispatcher: tlsAgent, headers: { authorization: 'Bearer tok' } });
      expect(r.statusCode).toBe(404);
      await r.body.dump();
      const h = await request(`https://${RELAY_IP}:${R + 2}/healthz`, { dispatcher: tlsAgent });
      expect(h.statusCode).toBe(200);
      await h.body.dump();
    } finally {
      await tlsAgent.close();
    }
  });

  it('a certificate for another name is refused; nothing lost, delivered once it is right', async () => {
    const good = await fromFleet('relay-t');
    const wrong = await issueHopCert({ fleet, node: 'relay-t', names: ['127.0.17.9'], secrets: secretOpener({ flag: idFile, env: {} }) });
    expect(wrong.issued).toBe(true);
    const w = await fromFleet('relay-t');
    await install('relay', w.cert, w.key);
    await stopAgent(relay); // drops the edge's kept-alive connection made with the good certificate
    relay = await startAgent('relay-t', R, R + 1, relayArgs, { host: RELAY_IP });
    await refusedWith('wrong-name', 'wrong-name', 4);
    await install('relay', good.cert, good.key);
    await deliveredOnce('wrong-name', 4);
  });

  it('an expired hop certificate (a relay offline past its renewal): the edge keeps spooling, says tls: expired, and resumes after the renewal', async () => {
    const secrets = secretOpener({ flag: idFile, env: {} });
    // Issued 400 days ago for a year: expired 35 days ago.
    await issueHopCert({ fleet, node: 'relay-t', names: [RELAY_IP], secrets, now: new Date(Date.now() - 400 * DAY) });
    const old = await fromFleet('relay-t');
    await install('relay', old.cert, old.key);
    await stopAgent(relay);
    relay = await startAgent('relay-t', R, R + 1, relayArgs, { host: RELAY_IP });
    expect((await status(relay)).forwardTls.daysLeft).toBeLessThan(0);
    await refusedWith('expired', 'expired', 6);
    // The edge's heartbeat says so once it reaches the hub (it waits in the spool like the rest).
    // What apply (or cron) runs: --if-due renews a certificate under 30 days left.
    const renewed = await cli(['ca', 'issue', 'relay-t', '--fleet', fleet, '--name', RELAY_IP, '--if-due', '--json'], { env: { EDGECTL_AGE_IDENTITY_FILE: idFile } });
    outputs.push(renewed.stdout, renewed.stderr);
    expect(json(renewed)).toMatchObject({ issued: true });
    const fresh = await fromFleet('relay-t');
    await install('relay', fresh.cert, fresh.key);
    await deliveredOnce('expired', 6);
    const beats = (await sinkLines()).filter((l) => l.tenant === '_agent' && l.topic === 'heartbeat').map((l) => JSON.parse(l.body) as { node: string; tls?: { upstream?: string; server?: { daysLeft: number } } });
    expect(beats.some((b) => b.node === 'edge-t' && b.tls?.upstream === 'expired')).toBe(true);
    expect(beats.some((b) => b.node === 'edge-t' && b.tls?.upstream === 'ok')).toBe(true);
    expect(beats.some((b) => b.node === 'relay-t' && (b.tls?.server?.daysLeft ?? 0) > 360)).toBe(true);
  });

  it('no output, log, status or fleet file holds a byte of any private key', async () => {
    outputs.push(...[edge, relay, hub].map((a) => a.log.join('')), await readFile(path.join(dir, 'sink.jsonl'), 'utf8'));
    const fleetFiles: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else fleetFiles.push(await readFile(path.join(d, e.name), 'latin1'));
      }
    };
    await walk(fleet);
    expect(keys.length).toBeGreaterThanOrEqual(6);
    const haystack = [...outputs, ...fleetFiles].join('\n');
    expect(haystack.length).toBeGreaterThan(10_000);
    for (const k of keys) {
      const body = k.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
      expect(body.length).toBeGreaterThan(100);
      expect(haystack.includes(body)).toBe(false);
      // The secret itself (the 32-byte scalar), however it could be spelled: hex, base64, base64url.
      const d = Buffer.from(createPrivateKey(k).export({ format: 'jwk' }).d!, 'base64url');
      expect(d.length).toBe(32);
      for (const spelled of [d.toString('hex'), d.toString('base64').replace(/=+$/, ''), d.toString('base64url')]) expect(haystack.includes(spelled)).toBe(false);
    }
  });
});
