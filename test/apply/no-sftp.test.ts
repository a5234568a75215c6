import { appendFile, chmod, mkdtemp, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { cli, json } from '../helpers/cli.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { countingTransport } from '../helpers/counting.js';
import { freePortRange } from '../helpers/ports.js';
import { closeNginxLab, writeApps, type TestApp } from './helpers.js';

/**
 * Nodes without SFTP: real dropbear (no sftp-server, as on OpenWrt) and an OpenSSH with the
 * subsystem removed, reached directly, and an OpenSSH edge behind a relay. The whole cycle
 * (apply, drift, a hand edit that plan shows and apply repairs, rollback) runs on each, and
 * every request/response turn per node is counted: the same few on every kind of sshd.
 */
let lab: Lab;
let dir: string;
let fleet: string;
let home: string;
let db: LabHost;
let ns: LabHost;
let relay: LabHost;
let edge: LabHost;
let apps: TestApp[];
let HTTP: number;
/** db-1 and ns-1 share the lab's root-namespace address: each its own port. */
const portOf = (h: LabHost) => (h === ns ? HTTP + 1 : HTTP);
const NODES = ['db-1', 'ns-1', 'edge-1'];
/** Every node the fleet gives a release: the relay runs nginx too. */
const ALL = [...NODES, 'relay-1'];
const every = (o: string) => Object.fromEntries(ALL.map((n) => [n, o]));
const flags = () => ['--fleet', fleet, '--identity', lab.clientKey];
const run = (args: string[]) => cli(args, { home });
const hostOf = (n: string) => ({ 'db-1': db, 'ns-1': ns, 'edge-1': edge })[n]!;

/** The node's nginx as its clients see it (lab.http: from its relay's namespace for the edge). */
async function fetchOn(h: LabHost, host: string): Promise<string> {
  return (await lab.http(h, { port: portOf(h), host })).body.trim();
}

const calls = new Map<string, string[]>();
const deps: FleetDeps = {
  logger: silentLogger, now: () => new Date(), edgectlVersion: 'test',
  connect: (model: FleetModel) => {
    const c = createConnector({ model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, systemKnownHosts: false, sshConfig: false, agentSocket: false });
    return { ...c, open: async (n) => counting(await c.open(n)) };
  },
};
const counting = (t: Transport): Transport => countingTransport(t, calls);

async function planAndApply() {
  calls.clear();
  const p = await planFleet(deps, { fleet, concurrency: 3, diff: false, keepConnections: true });
  try {
    const r = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: deps.now, states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 3 });
    return { report: r, handshakes: p.connector.stats().handshakes, outcome: Object.fromEntries(r.nodes.map((n) => [n.node, n.outcome])) };
  } finally {
    await p.connector.close();
  }
}

beforeAll(async () => {
  lab = await createLab();
  await chmod(lab.dir, 0o755);
  db = await lab.addHost('db-1', { sshd: 'dropbear' });
  ns = await lab.addHost('ns-1', { sshd: 'openssh-nosftp' });
  relay = await lab.addHost('relay-1', { relay: true });
  edge = await lab.addHost('edge-1', { behind: relay });
  dir = await mkdtemp(join(tmpdir(), 'ec-nosftp-'));
  fleet = join(dir, 'fleet');
  home = join(dir, 'home');
  HTTP = await freePortRange(2, db.address);
  await lab.writeFleet(fleet, { pin: true });
  await writeFile(join(fleet, 'nodes.yaml'), [db, ns, relay, edge].map((h) => lab.nodeDoc(h, { pin: true, spec: { ...(h.relay ? {} : { role: 'edge' }), http: { address: h.netns ? '0.0.0.0' : h.address, port: portOf(h) } } })).join('---\n'));
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  apps = [{ name: 'web', domain: 'www.acme.test', nodes: NODES, html: 'web v1\n' }];
  await writeApps(fleet, apps);
}, 120_000);

afterAll(async () => {
  await closeNginxLab(lab, dir);
});

describe('apply, drift and rollback on nodes without SFTP', { timeout: 180_000 }, () => {
  it('the servers really have no SFTP: the subsystem is refused', async () => {
    for (const h of [db, ns]) {
      const r = await lab.execIn(undefined, ['sftp', '-b', '-', '-i', lab.clientKey, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-P', String(h.port), `root@${h.address}`]);
      expect(r.code, h.name).not.toBe(0);
    }
  });

  it('first apply: every node serves, the release went as one stream, in one exec after the state read', async () => {
    const { outcome, report } = await planAndApply();
    expect(outcome, JSON.stringify(report.nodes.map((n) => [n.node, n.step, n.cause, n.output]))).toEqual(every('applied'));
    for (const n of ALL) {
      if (n !== 'relay-1') expect(await fetchOn(hostOf(n), 'www.acme.test'), n).toBe('web v1');
      expect(calls.get(n), n).toEqual(['exec sh', 'exec bash']);
      expect(report.nodes.find((r) => r.node === n)).toMatchObject({ path: 'oneshot', fileTransfer: 'stream', turns: 1 });
    }
  });

  it('a no-op costs one turn per node, a one-file change two, on dropbear, OpenSSH without SFTP and behind a relay alike; one connection per node', async () => {
    const noop = await planAndApply();
    expect(noop.outcome).toEqual(every('unchanged'));
    for (const n of ALL) expect(calls.get(n), n).toEqual(['exec sh']);
    apps = [{ ...apps[0], html: 'web v2\n' }];
    await writeApps(fleet, apps);
    const change = await planAndApply();
    expect(change.outcome).toEqual({ ...every('applied'), 'relay-1': 'unchanged' });
    expect(calls.get('relay-1')).toEqual(['exec sh']);
    for (const n of NODES) {
      expect(calls.get(n), n).toEqual(['exec sh', 'exec bash']);
      expect(await fetchOn(hostOf(n), 'www.acme.test'), n).toBe('web v2');
    }
    expect(change.handshakes).toBe(4); // three nodes and the relay: plan's connections are apply's
  });

  it('a file edited by hand: plan shows the node modified, with the edit in --diff; drift says modified; apply repairs it over exec channels', async () => {
    for (const n of ['db-1', 'ns-1']) await appendFile(join(hostOf(n).root, 'current', 'apps', 'acme.web', 'index.html'), 'defaced\n');
    await appendFile(join(ns.root, 'current', 'nginx', 'conf.d', 'acme.web.conf'), '# edited on the node\n');
    const p = await run(['plan', ...flags(), '--json', '--diff']);
    const nodes = json(p).nodes;
    for (const n of ['db-1', 'ns-1']) {
      const pn = nodes.find((x: any) => x.node === n);
      expect(pn.action, n).toBe('update');
      expect(pn.reason).toContain('modified on node');
      expect(pn.current.modified.modified).toEqual(n === 'ns-1' ? ['apps/acme.web/index.html', 'nginx/conf.d/acme.web.conf'] : ['apps/acme.web/index.html']);
    }
    // --diff shows the edit: from what the node holds back to what git says.
    const patch = nodes.find((x: any) => x.node === 'ns-1').diff.files.find((f: any) => f.path === 'nginx/conf.d/acme.web.conf').patch;
    expect(patch).toMatch(/^-# edited on the node$/m);
    expect(nodes.find((x: any) => x.node === 'edge-1').action).toBe('none');
    const d = await run(['drift', ...flags(), '--json']);
    expect(json(d).nodes.find((x: any) => x.node === 'db-1')).toMatchObject({ status: 'modified', outdated: false });
    const a = await run(['apply', ...flags(), '--yes', '--json']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const res = json(a).nodes;
    for (const n of ['db-1', 'ns-1']) {
      expect(res.find((x: any) => x.node === n), n).toMatchObject({ outcome: 'applied', path: 'steps', fileTransfer: 'exec' });
      expect(await fetchOn(hostOf(n), 'www.acme.test'), n).toBe('web v2');
    }
    expect((await run(['drift', ...flags()])).code).toBe(0);
  });

  it('rollback over exec channels returns each node to its previous release; history lists what --to can take', async () => {
    const before = (await readlink(join(db.root, 'current'))).replace('releases/', '');
    const r = await run(['rollback', ...flags(), '--node', 'db-1', '--node', 'ns-1', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const n of ['db-1', 'ns-1']) expect(await fetchOn(hostOf(n), 'www.acme.test'), n).toBe('web v1');
    const h = await run(['history', 'db-1', ...flags(), '--json']);
    expect(h.code, h.stdout + h.stderr).toBe(0);
    const rels = json(h).nodes[0].releases;
    expect(rels.map((x: any) => x.release)).toContain(before);
    expect(rels.find((x: any) => x.current).result).toBe('good');
  });
});
