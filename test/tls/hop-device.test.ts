import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { createPrivateKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { freePortRange } from '../helpers/ports.js';
import { killNginx } from '../apply/helpers.js';
import { type AgentProc, admin, credential, killAll, sha, startAgent, waitFor } from '../agent/helpers.js';
import { makeCa, makeIdentity, writeTlsFleet } from './helpers.js';
import { initFleetCa, issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { execFileSync, spawn } from 'node:child_process';
import { BIN, REPO } from '../helpers/paths.js';

/**
 * HTTPS all the way: a device POSTs over HTTPS to a TLS app with an uplink topic on the edge's
 * real nginx (applied with --local, the app's certificate from a CA of the test's own), the edge
 * agent (run from the agent.json render wrote: upstreamCa pinned, https:// hub URL) forwards over
 * TLS to a hub agent whose hop certificate the fleet CA issued for a key born on the hub's node
 * (`ca issue --csr`), and the message is in the hub's sink.
 */
const ADDR = '127.0.17.10', HUB = '127.0.17.20';
const TOKEN = 'device-token-hopdev';
let dir: string, fleet: string, nodes: string;
let PORTS: LocalPortBlock;
let H: number;
let hub: AgentProc;
let edgeAgent: ReturnType<typeof spawn> | undefined;
const edgeLog: string[] = [];
let relayKey: string;
let applyOutput = '';

function tlsPost(port: number, name: string, ca: Buffer, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: ADDR, port, method: 'POST', path: '/v1/q/events', servername: name, ca, agent: false, timeout: 10_000, headers: { host: name, authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain', connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-hopdev-'));
  await chmod(dir, 0o755);
  fleet = path.join(dir, 'fleet');
  nodes = path.join(dir, 'nodes');
  const scratch = path.join(dir, 'scratch');
  await mkdir(scratch);
  const appCa = makeCa(scratch);
  const id = await makeIdentity(path.join(scratch, 'id.txt'));
  await writeTlsFleet(fleet, { ca: appCa, recipients: [id.recipient], apps: [{ name: 'secure', domains: ['secure.acme.example'] }] });
  H = await freePortRange(3, HUB);
  await writeFile(path.join(fleet, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "https://${HUB}:${H + 2}/v1/forward" }\n  hops: { tls: {} }\n  secrets: { recipients: [${id.recipient}] }\n`);
  await writeFile(path.join(fleet, 'tenants.yaml'), `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: { uplink: { tokens: [{ name: dev, sha256: ${sha(TOKEN)} }] } }\n`);
  await writeFile(path.join(fleet, 'apps.yaml'), (await readFile(path.join(fleet, 'apps.yaml'), 'utf8')).replace(/\n(?=---|$)/g, '\n  uplink: { topics: [events] }\n'));
  await initFleetCa({ fleet });
  // The hub's key is born on its node (openssl there); the fleet CA signs its request.
  const hubNode = path.join(dir, 'hub-node');
  await mkdir(hubNode);
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(hubNode, 'hop.key.pem'), '-subj', '/CN=hub-d', '-out', path.join(hubNode, 'hop.csr')], { stdio: 'pipe' });
  await chmod(path.join(hubNode, 'hop.key.pem'), 0o600);
  const issued = await issueHopCert({ fleet, node: 'hub-d', names: [HUB], csr: await readFile(path.join(hubNode, 'hop.csr'), 'utf8'), secrets: secretOpener({ flag: id.file, env: {} }) });
  expect(issued.keyOn).toBe('node');
  await writeFile(path.join(hubNode, 'hop.pem'), await readFile(path.join(fleet, 'tls/hops/hub-d.pem')));
  // A relay too (nobody forwards through it here): apply ships its hop certificate and key.
  await writeFile(path.join(fleet, 'nodes.yaml'), `${await readFile(path.join(fleet, 'nodes.yaml'), 'utf8')}---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-d }\nspec: { role: relay, address: 192.0.2.50 }\n`);
  // In --local mode its senders would dial it on the local address: the certificate names both.
  const renewed = await cli(['ca', 'issue', 'relay-d', '--fleet', fleet, '--name', '192.0.2.50', '--name', ADDR, '--json'], { env: { EDGECTL_AGE_IDENTITY_FILE: id.file } });
  expect(renewed.code, renewed.stderr).toBe(0);
  relayKey = (await secretOpener({ flag: id.file, env: {} }).open('tls/hops/relay-d.key.age', await readFile(path.join(fleet, 'tls/hops/relay-d.key.age')))).toString('utf8');
  applyOutput = renewed.stdout + renewed.stderr;
  PORTS = await localPortBlock(['edge-1', 'relay-d'], ADDR);
  const r = await cli(['apply', '--fleet', fleet, '--local', nodes, ...PORTS.flags, '--local-address', ADDR, '--age-identity', id.file, '--yes', '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  applyOutput += r.stdout + r.stderr;
}, 180_000);

afterAll(async () => {
  edgeAgent?.kill('SIGKILL');
  await killAll();
  if (dir) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a device POSTs over HTTPS on the edge; the message crosses the hop over TLS', { timeout: 180_000 }, () => {
  it('apply ships the relay its hop certificate and key (0600), and prints no byte of the key', async () => {
    const cur = path.join(nodes, 'relay-d', 'current');
    const cfg = JSON.parse(await readFile(path.join(cur, 'agent', 'agent.json'), 'utf8'));
    expect(cfg.forwardTls.keyFile).toBe(`${cfg.metering.root}/current/agent/tls/hop.key.pem`);
    const { stat } = await import('node:fs/promises');
    expect((await stat(path.join(cur, 'agent', 'tls', 'hop.key.pem'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(cur, 'agent', 'tls', 'hop.key.pem'), 'utf8')).toBe(relayKey);
    const d = Buffer.from(createPrivateKey(relayKey).export({ format: 'jwk' }).d!, 'base64url');
    for (const spelled of [d.toString('hex'), d.toString('base64').replace(/=+$/, ''), d.toString('base64url'), relayKey.split('\n')[1]]) expect(applyOutput).not.toContain(spelled);
  });

  it('reaches the hub', async () => {
    const cfgFile = path.join(nodes, 'edge-1', 'current', 'agent', 'agent.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'));
    expect(cfg.upstreams).toEqual([`https://${HUB}:${H + 2}/v1/forward`]);
    expect(cfg.upstreamCa).toBe(await readFile(path.join(fleet, 'tls/fleet-ca.pem'), 'utf8'));
    // The edge's credential (bootstrap makes it on a real node) and the hub's accept list for it.
    const cred = credential(dir, 'edge-1');
    await mkdir(path.dirname(cfg.credentialFile), { recursive: true });
    await writeFile(cfg.credentialFile, cred.secret, { mode: 0o600 });
    hub = await startAgent('hub-d', H, H + 1, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${path.join(dir, 'sink.jsonl')}`,
      '--forward-tls-listen', `${HUB}:${H + 2}`, '--forward-tls-cert', path.join(dir, 'hub-node', 'hop.pem'), '--forward-tls-key', path.join(dir, 'hub-node', 'hop.key.pem'),
      '--accept-forward', cred.accept(), '--topic', 'acme/events', '--heartbeat-seconds', '0'], { host: HUB });
    edgeAgent = spawn(process.execPath, [BIN, 'agent', '--config', cfgFile, '--heartbeat-seconds', '0'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    edgeAgent.stderr!.setEncoding('utf8').on('data', (d: string) => edgeLog.push(d));
    const { https: httpsPort, agent } = PORTS.of('edge-1');
    await waitFor(async () => (await fetch(`http://${ADDR}:${agent}/healthz`).catch(() => undefined))?.ok === true, 60_000, `the edge agent\n${edgeLog.join('')}`);
    const appCa = await readFile(path.join(dir, 'scratch', 'edgectl-test-CA.pem'));
    const r = await tlsPost(httpsPort, 'secure.acme.example', appCa, 'over https, then over the hop');
    expect(r.status, r.body).toBe(202);
    const { id } = JSON.parse(r.body) as { id: string };
    await waitFor(async () => (await readFile(path.join(dir, 'sink.jsonl'), 'utf8').catch(() => '')).includes(id), 60_000, `the message at the hub\n${edgeLog.join('')}`, 250);
    const line = (await readFile(path.join(dir, 'sink.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: string; body: string }).find((l) => l.id === id)!;
    expect(line.body).toBe('over https, then over the hop');
    const token = (await readFile(cfg.adminTokenFile, 'utf8')).trim();
    const st = await (await fetch(`http://${cfg.admin}/status`, { headers: { authorization: `Bearer ${token}` } })).json() as { forward: { tls: { state: string } } };
    expect(st.forward.tls.state).toBe('ok');
    expect((await (await admin(hub, '/status')).json() as { intake: { forwardedAccepted: number } }).intake.forwardedAccepted).toBeGreaterThanOrEqual(1);
  });
});
