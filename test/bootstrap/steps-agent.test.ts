import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import type { NodeResult } from '../../src/lib/release/activate.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import { REPO } from '../helpers/paths.js';
import { freePortRange } from '../helpers/ports.js';
import { get, killNginx } from '../apply/helpers.js';
import { untilValue } from '../agent/helpers.js';

/**
 * apply's step-by-step path (the one used when the one-shot cannot run: no bash on the node, a
 * release with Kong, a release on the node that does not match its manifest) and the node's
 * agent: the same contract as the one-shot's `step agent`. A changed agent.json gets the agent a
 * SIGHUP, and the release counts only once /healthz shows the new agent.json's digest; an agent
 * that does not take it reverts the release. Real nginx (local mode), the bundled agent as
 * systemd runs it (`edgectl-agent.cjs --root`).
 */
const ADDR = '127.0.2.73';
const BUNDLE = join(REPO, 'dist', 'agent', 'edgectl-agent.cjs');
let BASE: number; // nginx; the agent listens on BASE + 1, its admin API on BASE + 2
let dir: string;
let fleet: string;
let root: string;
let agent: ResultPromise | undefined;
let log = '';
let deps: FleetDeps;
const local = { root: '', portBase: 0, portRange: 1, address: ADDR };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const currentAgentJson = async () => sha(await readFile(join(root, 'current', 'agent', 'agent.json')));

async function writeFleet(o: { html: string; topics: string[] }): Promise<void> {
  await mkdir(join(fleet, 'sites', 'web'), { recursive: true });
  await writeFile(join(fleet, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n');
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeFile(join(fleet, 'nodes.yaml'), 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: s1 }\nspec: { role: edge, address: 192.0.2.1 }\n');
  await writeFile(join(fleet, 'sites', 'web', 'index.html'), o.html);
  await writeFile(join(fleet, 'apps.yaml'), `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: web }\nspec:\n  tenant: acme\n  type: static\n  domains: [web.steps.test]\n  placement: { nodes: [s1] }\n  static: { path: sites/web }\n  uplink: { topics: [${o.topics.join(', ')}] }\n`);
}

/** One apply of the fleet as it is, on the step-by-step path. */
async function applySteps(): Promise<NodeResult> {
  const planned = await planFleet(deps, { fleet, local, concurrency: 1, diff: false });
  try {
    const r = await applyPlan(planned.plan, bundlesOf(planned), { connector: planned.connector, logger: silentLogger, now: deps.now, stepByStep: true }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 1 });
    expect(r.nodes[0].path, JSON.stringify(r.nodes[0])).toBe('steps');
    return r.nodes[0];
  } finally {
    await planned.connector.close();
  }
}

interface Healthz { ok: boolean; config: string | null; reload: { at: string; outcome: string } | null }
async function healthz(): Promise<Healthz> {
  return (await fetch(`http://${ADDR}:${BASE + 1}/healthz`, { signal: AbortSignal.timeout(2000) })).json() as never;
}
const until = <T>(what: string, f: () => Promise<T | undefined | false>, ms?: number): Promise<T> => untilValue(what, f, () => log, ms);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-steps-agent-'));
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  local.root = join(dir, 'nodes');
  root = join(local.root, 's1');
  BASE = local.portBase = await freePortRange(3, ADDR);
  deps = { logger: silentLogger, now: () => new Date(), edgectlVersion: 'test', connect: (model: FleetModel) => createConnector({ model, fleetRoot: fleet, localRoot: local.root }) };
  await writeFleet({ html: 'v1\n', topics: ['t1'] });
  const first = await applySteps(); // no agent runs yet: nothing to HUP
  expect(first.outcome, JSON.stringify(first)).toBe('applied');
  expect(first.agentReloaded).toBeFalsy();
  agent = execa(process.execPath, [BUNDLE, '--root', root, '--nginx-binary', '/usr/sbin/nginx'], { reject: false, env: { NO_COLOR: '1' } });
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until('the agent', async () => (await healthz()).ok);
}, 120_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGCONT');
    agent.kill('SIGTERM');
    await Promise.race([agent, sleep(10_000)]);
  }
  if (local.root) await killNginx(local.root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the step-by-step apply and the node agent', { timeout: 120_000 }, () => {
  it('a changed agent.json: the agent gets SIGHUP and the apply waits for /healthz to show its digest', async () => {
    const before = await healthz();
    expect(before.config).toBe(await currentAgentJson());
    await writeFleet({ html: 'v1\n', topics: ['t1', 't2'] });
    const r = await applySteps();
    expect(r.outcome, JSON.stringify(r)).toBe('applied');
    expect(r.agentReloaded).toBe(true);
    expect(Object.keys(r.stepsMs ?? {})).toContain('agent');
    // Once apply returned, the agent already runs the new agent.json: no waiting here.
    const after = await healthz();
    expect(after.config).toBe(await currentAgentJson());
    expect(after.config).not.toBe(before.config);
    expect(after.reload).toMatchObject({ outcome: 'applied' });
  });

  it('a release that leaves agent.json alone sends no SIGHUP', async () => {
    const before = await healthz();
    await writeFleet({ html: 'v2\n', topics: ['t1', 't2'] });
    const r = await applySteps();
    expect(r.outcome, JSON.stringify(r)).toBe('applied');
    expect(r.agentReloaded).toBeFalsy();
    expect(Object.keys(r.stepsMs ?? {})).not.toContain('agent');
    expect((await get(ADDR, BASE, 'web.steps.test', '/')).body).toBe('v2\n');
    expect((await healthz()).reload).toEqual(before.reload);
  });

  it('an agent that does not take the new agent.json (SIGSTOPped) reverts the release at the agent step', async () => {
    const was = await readlink(join(root, 'current'));
    const old = await currentAgentJson();
    await writeFleet({ html: 'v3\n', topics: ['t1', 't2', 't3'] });
    const pid = agent!.pid!;
    process.kill(pid, 'SIGSTOP');
    let r: NodeResult;
    const t0 = Date.now();
    try {
      r = await applySteps();
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(r.outcome, JSON.stringify(r)).toBe('rolled-back');
    expect(r.step).toBe('agent');
    expect(r.cause).toContain('the agent did not come up with the new agent.json');
    expect(Date.now() - t0, 'bounded by the clock').toBeLessThan(60_000);
    expect(await readlink(join(root, 'current'))).toBe(was);
    expect((await get(ADDR, BASE, 'web.steps.test', '/')).body).toBe('v2\n');
    // Woken, the agent runs the previous release's agent.json (the HUP back found it stopped: noted).
    expect(r.notes.join('\n')).toContain('rolled back to');
    await until('the agent on the old agent.json', async () => {
      const h = await healthz();
      return h.ok && h.config === old;
    });
    expect(agent!.exitCode).toBeNull();
  });
});
