import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { killNginx } from '../apply/helpers.js';
import { waitFor } from '../agent/helpers.js';
import { makeIdentity, writeHopFleet } from './helpers.js';
import { initFleetCa, issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { localPorts } from '../../src/lib/nodes/local-mode.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { BIN, REPO } from '../helpers/paths.js';

/**
 * `apply --local` with spec.hops.tls and two relays and a core node on one machine: each gets a
 * TLS forward listener port of its own (local-mode.ts, like its other ports) on the local address,
 * an edge behind a relay dials that relay's port, and the three real agents, run from the
 * agent.json apply shipped, each serve their own certificate at once. 127.0.32.20.
 */
const ADDR = '127.0.32.20';
const NODES = ['core-l', 'relay-l1', 'relay-l2', 'edge-l'];
let dir: string, fleet: string, nodes: string;
let PORTS: LocalPortBlock;
const agents: ReturnType<typeof spawn>[] = [];
const logs: string[] = [];

const fingerprintAt = (port: number, ca: Buffer) => new Promise<string | undefined>((resolve) => {
  const req = https.request({ host: ADDR, port, path: '/healthz', ca, agent: false, timeout: 5000 }, (res) => {
    const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
    res.resume();
    res.on('end', () => resolve(res.statusCode === 200 ? fp : undefined));
  });
  req.on('error', () => resolve(undefined));
  req.end();
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-hoplocal-'));
  await chmod(dir, 0o755);
  fleet = path.join(dir, 'fleet');
  nodes = path.join(dir, 'nodes');
  await mkdir(fleet);
  const id = await makeIdentity(path.join(dir, 'id.txt'));
  await writeFile(path.join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeHopFleet(fleet, { recipient: id.recipient, nodes: [
    'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: core-l }\nspec: { role: core, address: 192.0.2.70 }',
    'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-l1 }\nspec: { role: relay, address: 192.0.2.71 }',
    'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-l2 }\nspec: { role: relay, address: 192.0.2.72 }',
    'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: edge-l }\nspec: { role: edge, address: 203.0.113.70, via: [relay-l2] }',
  ].join('\n---\n') + '\n' });
  await initFleetCa({ fleet });
  const secrets = secretOpener({ flag: id.file, env: {} });
  // Their senders dial the local address in local mode: each certificate names it too (docs/tls.md).
  await issueHopCert({ fleet, node: 'core-l', names: ['hub.t.example', ADDR], secrets });
  await issueHopCert({ fleet, node: 'relay-l1', names: ['192.0.2.71', ADDR], secrets });
  await issueHopCert({ fleet, node: 'relay-l2', names: ['192.0.2.72', ADDR], secrets });
  PORTS = await localPortBlock(NODES, ADDR);
  const r = await cli(['apply', '--fleet', fleet, '--local', nodes, ...PORTS.flags, '--local-address', ADDR, '--age-identity', id.file, '--yes', '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  if (dir) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('local mode gives each relay and core node its own TLS forward port', { timeout: 180_000 }, () => {
  it('the port is stable per node and apart from every other local port', () => {
    const a = localPorts(NODES, { portBase: 20000, portRange: 8 });
    const b = localPorts([...NODES, 'relay-zz'], { portBase: 20000, portRange: 8 });
    for (const n of NODES) expect(b.get(n)).toEqual(a.get(n));
    const all = [...a.values()].flatMap((p) => [p.http, p.https, p.agent, p.admin, p.hopTls]);
    expect(new Set(all).size).toBe(all.length);
    for (const p of a.values()) expect(p.hopTls).toBe(20000 + 4 * 8 + (p.http - 20000));
    expect(() => localPorts(NODES, { portBase: 65535 - 4 * 1000 })).toThrow(/5 × --local-port-range/);
  });

  it('agent.json: each listener on its own port on the local address; the edge dials its relay\'s', async () => {
    const cfg = async (n: string) => JSON.parse(await readFile(path.join(nodes, n, 'current', 'agent', 'agent.json'), 'utf8'));
    for (const n of ['core-l', 'relay-l1', 'relay-l2']) expect((await cfg(n)).forwardTls.listen, n).toBe(`${ADDR}:${PORTS.of(n).hopTls}`);
    expect((await cfg('edge-l')).upstreams).toEqual([`https://${ADDR}:${PORTS.of('relay-l2').hopTls}/v1/forward`]);
    expect((await cfg('edge-l')).forwardTls).toBeUndefined();
  });

  it('the three agents run side by side, each serving its own certificate on its port', async () => {
    const ca = await readFile(path.join(fleet, 'tls/fleet-ca.pem'));
    for (const n of ['core-l', 'relay-l1', 'relay-l2']) {
      const a = spawn(process.execPath, [BIN, 'agent', '--config', path.join(nodes, n, 'current', 'agent', 'agent.json'), '--heartbeat-seconds', '0'], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
      a.stderr!.setEncoding('utf8').on('data', (d: string) => logs.push(`${n}: ${d}`));
      agents.push(a);
    }
    for (const n of ['core-l', 'relay-l1', 'relay-l2']) {
      const want = new X509Certificate(await readFile(path.join(fleet, `tls/hops/${n}.pem`))).fingerprint256;
      let got: string | undefined;
      await waitFor(async () => (got = await fingerprintAt(PORTS.of(n).hopTls, ca)) !== undefined, 60_000, `${n}'s TLS listener\n${logs.join('')}`, 250);
      expect(got, n).toBe(want);
    }
  });
});
