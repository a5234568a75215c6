import { spawnSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseRecap, writeAnsible } from './ansible.js';
import { baselineArgv, baselineCounts, baselineEnv, writeBaselineList } from './baseline.js';
import { startFarm, type FarmNode } from './farm.js';
import { writeBenchFleet, type BenchFleet } from './fleet.js';
import { checkServing, type ServeCheck } from './http-check.js';
import { measure, type Measured } from './measure.js';
import { nodeCpuGroup, type NodeCpu } from './node-cpu.js';
import { endRunProcs } from './procs.js';
import { seedAnsibleState } from './seed.js';

/** One measured step as it goes into the JSON report. */
export interface Step {
  wallS: number;
  /** CPU seconds on the operator's side (user + system, children included). */
  cpuS: number;
  /** 1-minute load average when the step ended: other work on the machine shows here. */
  loadAvg1: number;
  maxRssMb: number;
  treeRssMb: number;
  /** CPU seconds on the nodes' side (the farm's sshds and all they forked, nginx included), when a cgroup could count it. */
  nodeCpuS?: number;
  exitCode: number | null;
  ok: boolean;
  /** Stopped at its time limit: wallS is then a lower bound. */
  timedOut: boolean;
  note?: string;
}

export interface AnsibleResult {
  forks: number;
  first?: Step & { changed: number; failed: number; unreachable: number };
  noop?: Step & { changed: number; failed: number; unreachable: number };
  served?: ServeCheck;
}

/** What edgectl's `apply --json` report says it did (summary counts), when it could be read. */
export interface ApplySummary {
  applied?: number;
  unchanged?: number;
  failed?: number;
  uploadedFiles?: number;
  uploadedBytes?: number;
  reloads?: number;
}

export interface SizeResult {
  nodes: number;
  loadAvg1: number;
  render?: Step;
  edgectl: {
    plan?: Step;
    apply?: Step & { summary?: ApplySummary };
    noopPlan?: Step;
    noopApply?: Step & { summary?: ApplySummary };
    served?: ServeCheck;
    concurrency: string | null;
  };
  /** The minimal apply (baseline.sh): one OpenSSH connection and one exec per node, same concurrency. */
  baseline?: { render?: Step; first?: Step; noop?: Step; concurrency: number };
  ansible: AnsibleResult[];
  pending: string[];
}

interface SizeOptions {
  repo: string;
  tmp: string;
  nodes: number;
  forks: number[];
  concurrency: string;
  skipAnsible: boolean;
  skipEdgectl: boolean;
  skipBaseline: boolean;
  /** Limit for each ansible-playbook run; a run that hits it gives a lower bound. */
  ansibleTimeoutMin: number;
  offset: number;
  log: (s: string) => void;
  spawned: number[];
}

const STEP_TIMEOUT_MS = 20 * 60_000;

type Counted = Measured & { nodeCpuS?: number };

function step(m: Counted, okCodes: number[], note?: string): Step {
  const ok = !m.timedOut && m.exitCode !== null && okCodes.includes(m.exitCode);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const notes = [m.timedOut ? `stopped at the time limit: the real time is longer` : '', note ?? ''].filter(Boolean).join('; ');
  return { wallS: round(m.wallS), cpuS: round(m.cpuS), loadAvg1: round(os.loadavg()[0]), maxRssMb: round(m.maxRssMb), treeRssMb: round(m.treeRssMb), ...(m.nodeCpuS !== undefined ? { nodeCpuS: round(m.nodeCpuS) } : {}), exitCode: m.exitCode, ok, timedOut: m.timedOut, ...(notes ? { note: notes } : {}) };
}

function tail(s: string, n = 1500): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

/** True when `edgectl <cmd> --help` works in this checkout (commands land while the bench is built). */
function hasCommand(repo: string, cmd: string): boolean {
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/run.js'), cmd, '--help'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.includes(`$ edgectl ${cmd}`);
}

export async function runSize(o: SizeOptions): Promise<SizeResult> {
  const { log } = o;
  const dir = path.join(o.tmp, `n${o.nodes}`);
  const logs = path.join(dir, 'logs');
  await mkdir(logs, { recursive: true });
  const result: SizeResult = { nodes: o.nodes, loadAvg1: Math.round(os.loadavg()[0] * 100) / 100, edgectl: { concurrency: o.concurrency || null }, ansible: [], pending: [] };
  let cpu: NodeCpu | undefined = undefined; // the farm's cgroup, once the farm is up
  const counted = async (run: () => Promise<Measured>): Promise<Counted> => {
    const before = await cpu?.usageNs();
    const m = await run();
    const after = await cpu?.usageNs();
    return before !== undefined && after !== undefined ? { ...m, nodeCpuS: (after - before) / 1e9 } : m;
  };
  const edgectl = (label: string, argv: string[]) =>
    counted(() =>
      measure(label, [process.execPath, path.join(o.repo, 'bin/run.js'), ...argv], {
        timeoutMs: STEP_TIMEOUT_MS,
        logPrefix: path.join(logs, label),
        env: { ...process.env, NO_COLOR: '1' },
        onSpawn: (pid) => o.spawned.push(pid),
      }),
    );
  const fail = (m: Measured, what: string) => new Error(`${what} exited ${m.exitCode}${m.timedOut ? ' (timed out)' : ''}:\n${tail(m.stdout)}\n${tail(m.stderr)}`);

  log(`== ${o.nodes} nodes: starting the farm`);
  const farm = await startFarm(dir, o.nodes, log, o.offset);
  o.spawned.push(...farm.sshdPids);
  cpu = await nodeCpuGroup(`edgectl-bench-${process.pid}-n${o.nodes}`, farm.sshdPids);
  if (!cpu) log('node-side CPU is not counted: no cgroup could be made for the farm');
  try {
    const common = { clientKey: farm.clientKey };
    const fleetE = await writeBenchFleet(path.join(dir, 'fleet-e'), farm.nodes, { ...common, rootsDir: path.join(dir, 'e'), httpPort: 8080 });
    // Ansible gets the same fleet with its own roots and port: the rendered files then carry
    // the right absolute paths for its nodes, and the two tools never share a directory.
    const fleetA = await writeBenchFleet(path.join(dir, 'fleet-a'), farm.nodes, { ...common, rootsDir: path.join(dir, 'a'), httpPort: 8081 });

    if (!o.skipEdgectl) await runEdgectl(o, result, fleetE, farm.nodes, edgectl, fail);
    if (!o.skipBaseline) {
      const fleetB = await writeBenchFleet(path.join(dir, 'fleet-b'), farm.nodes, { ...common, rootsDir: path.join(dir, 'b'), httpPort: 8082 });
      await runBaseline(o, result, dir, logs, farm, fleetB, edgectl, counted, fail);
    }

    if (!o.skipAnsible) {
      if (!hasCommand(o.repo, 'render')) {
        result.pending.push('edgectl render is not available: the Ansible side needs its bundles');
      } else {
        const bundles = path.join(dir, 'bundles-a');
        log('render (bundles for the Ansible side)');
        const r = await edgectl('render', ['render', '--fleet', fleetA.dir, '--out', bundles]);
        result.render = step(r, [0]);
        if (!result.render.ok) throw fail(r, 'edgectl render');
        for (const forks of o.forks) result.ansible.push(await runAnsible(o, dir, logs, farm, fleetA, bundles, forks, fail));
      }
    }
    return result;
  } finally {
    log(`== ${o.nodes} nodes: tearing down the farm`);
    await endRunProcs(dir, []);
    await farm.stop();
    await cpu?.close();
  }
}

function applySummary(stdout: string): ApplySummary | undefined {
  try {
    const s = (JSON.parse(stdout) as { summary?: Record<string, number> }).summary;
    if (!s) return undefined;
    return { applied: s.applied, unchanged: s.unchanged, failed: s.failed, uploadedFiles: s.uploadedFiles, uploadedBytes: s.uploadedBytes, reloads: s.reloads };
  } catch {
    return undefined;
  }
}

type Edgectl = (label: string, argv: string[]) => Promise<Counted>;
type Counting = (run: () => Promise<Measured>) => Promise<Counted>;
type Fail = (m: Measured, what: string) => Error;

async function runEdgectl(o: SizeOptions, result: SizeResult, fleet: BenchFleet, nodes: FarmNode[], edgectl: Edgectl, fail: Fail): Promise<void> {
  const { log } = o;
  if (!hasCommand(o.repo, 'plan') || !hasCommand(o.repo, 'apply')) {
    result.pending.push('edgectl plan/apply are not available in this checkout yet');
    log('edgectl plan/apply not available: skipping the edgectl side');
    return;
  }
  const target = ['--fleet', fleet.dir];
  const conc = o.concurrency ? ['--concurrency', o.concurrency] : [];
  log('edgectl plan (every node new)');
  const plan = await edgectl('plan', ['plan', ...target, '--json']);
  result.edgectl.plan = step(plan, [0, 2]);
  if (!result.edgectl.plan.ok) throw fail(plan, 'edgectl plan');

  log('edgectl apply (first)');
  const apply = await edgectl('apply', ['apply', ...target, '--yes', '--json', ...conc]);
  result.edgectl.apply = { ...step(apply, [0]), summary: applySummary(apply.stdout) };
  if (!result.edgectl.apply.ok) throw fail(apply, 'edgectl apply');
  log(`edgectl apply: ${JSON.stringify(result.edgectl.apply.summary)}`);
  result.edgectl.served = await checkServing(nodes, 8080, fleet.apps, { domain: 'www.shop.bench.test', expect: '<h1>shop</h1>' });
  log(`edgectl: ${result.edgectl.served.nodesServingSite}/${nodes.length} nodes serve the site, ${result.edgectl.served.appInstances} app instances answer`);
  if (result.edgectl.served.nodesServingSite !== nodes.length) throw new Error(`after edgectl apply, nodes not serving: ${result.edgectl.served.nodesDown.join(', ')}`);

  log('edgectl plan (nothing to change)');
  const plan2 = await edgectl('plan-noop', ['plan', ...target, '--json', '--detailed-exitcode']);
  result.edgectl.noopPlan = step(plan2, [0], plan2.exitCode === 2 ? 'plan still shows changes' : undefined);

  log('edgectl apply (nothing to change)');
  const apply2 = await edgectl('apply-noop', ['apply', ...target, '--yes', '--json', ...conc]);
  const noopSummary = applySummary(apply2.stdout);
  const sentSomething = noopSummary?.uploadedFiles || noopSummary?.reloads ? `no-op apply uploaded ${noopSummary.uploadedFiles} files, reloaded ${noopSummary.reloads} times` : undefined;
  result.edgectl.noopApply = { ...step(apply2, [0], sentSomething), summary: noopSummary };
  if (!result.edgectl.noopApply.ok) throw fail(apply2, 'edgectl no-op apply');
  log(`edgectl no-op apply: ${JSON.stringify(noopSummary)}`);

  // edgectl's nginx instances are not needed any more: stop them so they do not share the CPU with Ansible.
  await endRunProcs(path.join(path.dirname(fleet.dir), 'e') + '/', []);
}

async function runBaseline(o: SizeOptions, result: SizeResult, dir: string, logs: string, farm: { nodes: FarmNode[]; clientKey: string; knownHosts: string }, fleet: BenchFleet, edgectl: Edgectl, counted: Counting, fail: Fail): Promise<void> {
  const { log } = o;
  const conc = Number(o.concurrency || 16); // edgectl's default --concurrency
  result.baseline = { concurrency: conc };
  const bundles = path.join(dir, 'bundles-b');
  log('render (bundles for the baseline)');
  const r = await edgectl('render-b', ['render', '--fleet', fleet.dir, '--out', bundles]);
  result.baseline.render = step(r, [0]);
  if (!result.baseline.render.ok) throw fail(r, 'edgectl render');
  const list = path.join(dir, 'baseline-nodes.txt');
  await writeBaselineList(list, farm.nodes.map((n) => ({ name: n.name, address: n.address, port: 22 })), fleet.roots, bundles);
  const env = baselineEnv({ clientKey: farm.clientKey, knownHosts: farm.knownHosts, tmp: o.tmp });
  const run = (label: string, mode: 'apply' | 'noop') => counted(() => measure(label, baselineArgv(mode, list, conc), { env, timeoutMs: STEP_TIMEOUT_MS, logPrefix: path.join(logs, label), onSpawn: (pid) => o.spawned.push(pid) }));
  log(`baseline apply (first), concurrency ${conc}`);
  const first = await run('baseline-first', 'apply');
  const c1 = baselineCounts(first.stdout);
  result.baseline.first = step(first, [0], `${c1.ok} applied, ${c1.failed} failed`);
  if (!result.baseline.first.ok) throw fail(first, 'baseline apply');
  const served = await checkServing(farm.nodes, 8082, fleet.apps, { domain: 'www.shop.bench.test', expect: '<h1>shop</h1>' });
  log(`baseline: ${served.nodesServingSite}/${farm.nodes.length} nodes serve the site, ${served.appInstances} app instances answer`);
  if (served.nodesServingSite !== farm.nodes.length) throw new Error(`after the baseline apply, nodes not serving: ${served.nodesDown.join(', ')}`);
  log('baseline apply (no-op)');
  const noop = await run('baseline-noop', 'noop');
  const c2 = baselineCounts(noop.stdout);
  result.baseline.noop = step(noop, [0], `${c2.unchanged} unchanged, ${c2.failed} failed`);
  await endRunProcs(path.join(dir, 'b') + '/', []);
}

async function runAnsible(o: SizeOptions, dir: string, logs: string, farm: { nodes: FarmNode[]; clientKey: string; knownHosts: string }, fleet: BenchFleet, bundles: string, forks: number, fail: Fail): Promise<AnsibleResult> {
  const { log } = o;
  const res: AnsibleResult = { forks };
  const aDir = path.join(dir, `ansible-f${forks}`);
  // Each forks setting starts from empty node roots with no nginx running, like edgectl's first apply.
  await endRunProcs(path.join(dir, 'a') + '/', []);
  await rm(path.join(dir, 'a'), { recursive: true, force: true });
  const setup = await writeAnsible(aDir, { nodes: farm.nodes, roots: fleet.roots, bundles, clientKey: farm.clientKey, knownHosts: farm.knownHosts, forks });
  const env = { ...process.env, ANSIBLE_CONFIG: setup.cfg, ANSIBLE_FORCE_COLOR: '0', ANSIBLE_NOCOLOR: '1' };
  // Every run starts cold, like every edgectl process: no ssh control master left from the last one.
  const closeMasters = () => endRunProcs(setup.controlDir, []);
  const playbook = (label: string) =>
    measure(label, ['ansible-playbook', setup.playbook], { env, cwd: aDir, timeoutMs: o.ansibleTimeoutMin * 60_000, logPrefix: path.join(logs, label), onSpawn: (pid) => o.spawned.push(pid) });

  log(`ansible-playbook (first run, forks ${forks}, limit ${o.ansibleTimeoutMin} min)`);
  await closeMasters();
  const first = await playbook(`ansible-f${forks}-first`);
  const r1 = parseRecap(first.stdout);
  res.first = { ...step(first, [0]), changed: r1.changed, failed: r1.failed, unreachable: r1.unreachable };
  if (first.timedOut) {
    // A lower bound for Ansible's time. Seed the state its first run would have left, so the
    // no-change run is still measured (and checks the seeding: it must report nothing changed).
    log(`ansible first run stopped at its ${o.ansibleTimeoutMin} min limit; seeding the finished state for the no-change run`);
    await closeMasters();
    await endRunProcs(path.join(dir, 'a') + '/', []);
    await seedAnsibleState(farm.nodes, fleet.roots, bundles);
  } else {
    if (!res.first.ok || r1.hosts !== farm.nodes.length) throw fail(first, `ansible-playbook (forks ${forks})`);
    res.served = await checkServing(farm.nodes, 8081, fleet.apps, { domain: 'www.shop.bench.test', expect: '<h1>shop</h1>' });
    log(`ansible: ${res.served.nodesServingSite}/${farm.nodes.length} nodes serve the site, ${res.served.appInstances} app instances answer`);
  }

  log(`ansible-playbook (no-change run, forks ${forks})`);
  await closeMasters();
  const noop = await playbook(`ansible-f${forks}-noop`);
  const r2 = parseRecap(noop.stdout);
  res.noop = { ...step(noop, [0], r2.changed ? `${r2.changed} tasks reported changed` : undefined), changed: r2.changed, failed: r2.failed, unreachable: r2.unreachable };
  await closeMasters();
  await endRunProcs(path.join(dir, 'a') + '/', []);
  return res;
}
