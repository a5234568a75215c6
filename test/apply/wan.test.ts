import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf, type ApplyReport } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { freePort } from '../helpers/ports.js';
import { startWanProxy, wanProxyArgv, type WanProxy } from '../helpers/wan-proxy.js';
import { countingTransport } from '../helpers/counting.js';
import { closeNginxLab, writeApps, type TestApp } from './helpers.js';

/**
 * Round trips per node over a slow link: the three-node relay lab (relay-1, edge-1 and edge-2
 * behind it) with 50 ms of one-way delay (100 ms RTT) in front of the relay, so everything to
 * the edges rides inside that delayed connection; edge-2 also sits behind a second delaying
 * proxy inside the relay's namespace (10 ms each way), as a slow last hop. Every Transport call
 * per node is counted (plan + apply, as `edgectl apply` runs them) and cross-checked against
 * NodeResult.turns: a no-op costs 1 turn per node, a one-file change at most 3. Wall times are
 * printed, never asserted as a goal (bench/fleet-apply/wan.ts measures that).
 */
const DELAY_MS = 50;
const LAST_HOP_MS = 10;
let lab: Lab;
let dir: string;
let fleet: string;
let relay: LabHost;
let e1: LabHost;
let e2: LabHost;
let wan: WanProxy;
let lastHop: { address: string; port: number };
let HTTP: number;
const EDGES = ['edge-1', 'edge-2'];
const ALL = ['relay-1', ...EDGES];

const calls = new Map<string, string[]>();
const counting = (t: Transport): Transport => countingTransport(t, calls);
const deps: FleetDeps = {
  logger: silentLogger, now: () => new Date(), edgectlVersion: 'test',
  connect: (model: FleetModel) => {
    const c = createConnector({ model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, systemKnownHosts: false, sshConfig: false, agentSocket: false });
    return { ...c, open: async (n) => counting(await c.open(n)) };
  },
};

async function planAndApply(label: string): Promise<{ report: ApplyReport; handshakes: number; outcome: Record<string, string>; wallS: number }> {
  calls.clear();
  const t0 = performance.now();
  const p = await planFleet(deps, { fleet, concurrency: 3, diff: false, keepConnections: true });
  try {
    const report = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: deps.now, states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 3 });
    const wallS = (performance.now() - t0) / 1000;
    const outcome = Object.fromEntries(report.nodes.map((n) => [n.node, n.outcome]));
    const turns = Object.fromEntries(ALL.map((n) => [n, calls.get(n)?.length ?? 0]));
    console.log(`wan ${DELAY_MS} ms one-way in front of the relay, ${label}: plan + apply ${wallS.toFixed(2)} s, turns per node ${JSON.stringify(turns)}, ${p.connector.stats().handshakes} handshakes, ${JSON.stringify(wan.stats())}`);
    return { report, handshakes: p.connector.stats().handshakes, outcome, wallS };
  } finally {
    await p.connector.close();
  }
}

/** The edge's nginx, asked from the relay's namespace (the only place that reaches it). */
async function fetchOn(h: LabHost): Promise<string> {
  return (await lab.http(h, { port: HTTP, host: 'www.acme.test' })).body.trim();
}

let apps: TestApp[];

beforeAll(async () => {
  lab = await createLab();
  relay = await lab.addHost('relay-1', { relay: true });
  [e1, e2] = await lab.addHosts(EDGES, { behind: relay });
  wan = await startWanProxy({ listen: { host: '127.0.0.1' }, target: { host: relay.address, port: relay.port }, delayMs: DELAY_MS });
  // The last hop to edge-2: a proxy process inside the relay's namespace, on its bridge address.
  const bridge = `10.231.${relay.down!.octet}.1`;
  const log = join(lab.dir, 'last-hop.log');
  lab.spawnIn(relay, wanProxyArgv({ listen: `${bridge}:0`, target: `${e2.address}:${e2.port}`, delayMs: LAST_HOP_MS }), log);
  for (let i = 0; i < 200 && !lastHop; i++) {
    const m = /wan-proxy listening ([\d.]+):(\d+)/.exec(await readFile(log, 'utf8').catch(() => ''));
    if (m) lastHop = { address: m[1], port: Number(m[2]) };
    else await new Promise((r) => setTimeout(r, 50));
  }
  if (!lastHop) throw new Error('the last-hop proxy in the relay namespace did not start');
  dir = await mkdtemp(join(tmpdir(), 'ec-wan-'));
  fleet = join(dir, 'fleet');
  HTTP = await freePort();
  await lab.writeFleet(fleet, { pin: true });
  const reach = (h: LabHost) => (h === relay ? { address: wan.host, port: wan.port } : h === e2 ? lastHop : { address: h.address, port: h.port });
  await writeFile(join(fleet, 'nodes.yaml'), ALL.map((n) => {
    const h = { 'relay-1': relay, 'edge-1': e1, 'edge-2': e2 }[n]!;
    const r = reach(h);
    return lab.nodeDoc(h, { spec: { ...(h.relay ? {} : { role: 'edge' }), address: r.address, ssh: { user: 'root', port: r.port, hostKey: h.hostKey }, http: { address: '0.0.0.0', port: HTTP } } });
  }).join('---\n'));
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  apps = [{ name: 'web', domain: 'www.acme.test', nodes: EDGES, html: 'web v1\n' }];
  await writeApps(fleet, apps);
}, 120_000);

afterAll(async () => {
  await wan?.close();
  await closeNginxLab(lab, dir);
});

describe(`apply over a ${DELAY_MS} ms one-way link through a relay`, { timeout: 120_000 }, () => {
  it('first apply: every node served, one connection per node, the release in one exec after the state read', async () => {
    const r = await planAndApply('first apply');
    expect(r.outcome, JSON.stringify(r.report.nodes.map((n) => [n.node, n.step, n.cause, n.output]))).toEqual({ 'relay-1': 'applied', 'edge-1': 'applied', 'edge-2': 'applied' });
    for (const h of [e1, e2]) expect(await fetchOn(h), h.name).toBe('web v1');
    expect(r.handshakes).toBe(3);
    // The link's delay is on the path: TCP and SSH handshakes alone are several RTTs.
    expect(r.wallS).toBeGreaterThan((4 * 2 * DELAY_MS) / 1000);
    expect(wan.stats().connections).toBe(1);
  });

  it('a no-op costs one turn per node (the state read), relay and edges alike', async () => {
    const r = await planAndApply('no-op');
    expect(r.outcome).toEqual({ 'relay-1': 'unchanged', 'edge-1': 'unchanged', 'edge-2': 'unchanged' });
    for (const n of ALL) expect(calls.get(n), n).toEqual(['exec sh']);
    expect(r.handshakes).toBe(3);
  });

  it('a one-file change costs at most 3 turns per changed node through the relay (NodeResult.turns + the state read), the rest 1', async () => {
    apps = [{ ...apps[0], html: 'web v2\n' }];
    await writeApps(fleet, apps);
    const r = await planAndApply('one-file change');
    expect(r.outcome).toEqual({ 'relay-1': 'unchanged', 'edge-1': 'applied', 'edge-2': 'applied' });
    expect(calls.get('relay-1')).toEqual(['exec sh']);
    for (const n of EDGES) {
      const res = r.report.nodes.find((x) => x.node === n)!;
      const seen = calls.get(n)!;
      expect(seen.length, seen.join('\n')).toBeLessThanOrEqual(3);
      expect(res.turns, n).toBeDefined();
      expect(res.turns! + 1, n).toBe(seen.length); // the report's count agrees with the wire: its turns + plan's state read
      // One page changed, not nginx's config: current switched, no reload.
      expect(res).toMatchObject({ path: 'oneshot', reloads: 0 });
    }
    for (const h of [e1, e2]) expect(await fetchOn(h), h.name).toBe('web v2');
    expect(r.handshakes).toBe(3);
  });
});
