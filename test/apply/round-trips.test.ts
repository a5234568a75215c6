import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyPlan, bundlesOf, type ApplyReport } from '../../src/lib/apply/index.js';
import { driftFleet } from '../../src/lib/drift/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import type { Transport } from '../../src/lib/transport/types.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { countingTransport } from '../helpers/counting.js';
import { killNginx, writeApps, writeTestFleet, type TestApp } from './helpers.js';
import { STATE_SCRIPT } from '../../src/lib/release/remote.js';
import { ONESHOT_BOOT } from '../../src/lib/release/scripts-oneshot.js';

// Calls are logged by the first line of their script.
const STATE_READ = `exec ${STATE_SCRIPT.trim().split('\n')[0]}`;

/**
 * Round trips per node are what a fleet-wide apply costs over slow links: every Transport call
 * (exec, file transfer, HTTP) is counted per node, for plan + apply as the command runs them.
 */
const ADDR = '127.0.2.7';
/** Local mode's port base: r1 and r2 on the two free ports from here. */
let PORTS: LocalPortBlock;
let dir: string;
let fleet: string;
let root: string;
const calls = new Map<string, string[]>();

const counting = (t: Transport): Transport => countingTransport(t, calls, { scripts: true });

const deps: FleetDeps = {
  logger: silentLogger, now: () => new Date(), edgectlVersion: 'test',
  connect: (model: FleetModel) => {
    const c = createConnector({ model, fleetRoot: fleet, localRoot: root });
    return { ...c, open: async (n) => counting(await c.open(n)) };
  },
};

let last: ApplyReport | undefined;

async function planAndApply(): Promise<Record<string, string>> {
  calls.clear();
  const p = await planFleet(deps, { fleet, local: { root, portBase: PORTS.base, portRange: PORTS.range, address: ADDR }, concurrency: 2, diff: false, keepConnections: true });
  try {
    const r = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: deps.now, states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 2 });
    last = r;
    return Object.fromEntries(r.nodes.map((n) => [n.node, n.outcome]));
  } finally {
    await p.connector.close();
  }
}

const apps = (v: string): TestApp[] => [
  { name: 'web', domain: 'www.acme.test', nodes: ['r1'], html: `web ${v}\n` },
  { name: 'blog', domain: 'blog.acme.test', nodes: ['r2'], html: 'blog v1\n' },
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-trips-'));
  PORTS = await localPortBlock(['r1', 'r2'], ADDR);
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: ['r1', 'r2'], apps: apps('v1') });
  expect(await planAndApply()).toEqual({ r1: 'applied', r2: 'applied' });
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a no-op apply costs one round trip per node (the state read), nothing else', { timeout: 60_000 }, async () => {
  expect(await planAndApply()).toEqual({ r1: 'unchanged', r2: 'unchanged' });
  expect(Object.fromEntries(calls)).toEqual({ r1: [STATE_READ], r2: [STATE_READ] });
});

it('a changed node: the state read, then one exec carrying only the changed files; the other node is only read', { timeout: 60_000 }, async () => {
  await writeApps(fleet, apps('v2'));
  expect(await planAndApply()).toEqual({ r1: 'applied', r2: 'unchanged' });
  const r1 = calls.get('r1')!;
  expect(calls.get('r2')).toEqual([STATE_READ]);
  // Was 14 (state read for the plan; lock, state read again under the lock, stage ×3, nginx -t,
  // switch, reload, config check, health check, mark good, prune, unlock). The goal: ≤ 3.
  expect(r1, r1.join('\n')).toEqual([STATE_READ, `exec ${ONESHOT_BOOT}`]);
  const res = last!.nodes.find((n) => n.node === 'r1')!;
  // Only a page changed: nginx's config is the same, so current/ alone switches it (no reload).
  expect(res).toMatchObject({ path: 'oneshot', fileTransfer: 'stream', turns: 1, reloads: 0 });
  expect(res.transfer).toMatchObject({ files: 2 }); // index.html and the manifest; the rest copied on the node
  expect(res.transfer.copied).toBeGreaterThan(0);
  expect(Object.keys(res.stepsMs!)).toEqual(expect.arrayContaining(['upload', 'validate', 'switch', 'reload', 'config', 'health', 'good']));
});

it('drift of a clean node costs one round trip: the state read verifies current against the desired manifest', { timeout: 60_000 }, async () => {
  calls.clear();
  const { report, planned } = await driftFleet(deps, { fleet, local: { root, portBase: PORTS.base, portRange: PORTS.range, address: ADDR }, concurrency: 2 });
  await planned.connector.close();
  expect(report.summary.clean).toBe(2);
  for (const n of ['r1', 'r2']) expect(calls.get(n), calls.get(n)!.join('\n')).toEqual([STATE_READ]);
});
