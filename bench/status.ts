/**
 * Benchmark: `edgectl status` of N real nodes against a no-op `edgectl plan` of the same nodes
 * (issue 14's goal: status takes at most the no-op plan's time). One sshd and one nginx per node
 * (bench/fleet-apply's farm, loopback addresses from 127.0.4.<offset+1>), the fleet applied first.
 *
 *   npm run build && npx vite-node bench/status.ts -- --nodes 200 --runs 3 --offset 300
 *
 * Needs root, /usr/sbin/sshd, nginx and /usr/bin/time. Each command runs --runs times, the two
 * interleaved so load from elsewhere falls on both; prints the medians and writes
 * bench/out/status-<time>.json. Everything it starts is stopped at the end.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFarm } from './fleet-apply/farm.js';
import { writeBenchFleet } from './fleet-apply/fleet.js';
import { measure, type Measured } from './fleet-apply/measure.js';
import { endRunProcs } from './fleet-apply/procs.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const nodes = Number(opt('nodes', '200'));
const runs = Number(opt('runs', '3'));
const offset = Number(opt('offset', '0'));
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Release roots must lie below a data prefix (src/lib/fleet/values.ts); nginx workers (nobody) traverse it.
const tmp = await mkdtemp('/srv/edgectl-bst-');
await chmod(tmp, 0o755);
const spawned: number[] = [];
const farm = await startFarm(tmp, nodes, log, offset);
spawned.push(...farm.sshdPids);
try {
  const logs = path.join(tmp, 'logs');
  await mkdir(logs, { recursive: true });
  const fleet = await writeBenchFleet(path.join(tmp, 'fleet'), farm.nodes, { clientKey: farm.clientKey, rootsDir: path.join(tmp, 'roots'), httpPort: 8080 });
  let k = 0;
  const edgectl = (label: string, argv: string[]): Promise<Measured> => measure(label, [process.execPath, path.join(repo, 'bin/run.js'), ...argv, '--fleet', fleet.dir], {
    timeoutMs: 20 * 60_000, logPrefix: path.join(logs, `${label}-${k++}`), env: { ...process.env, NO_COLOR: '1' }, onSpawn: (pid) => spawned.push(pid),
  });
  log(`apply to ${nodes} nodes`);
  const a = await edgectl('apply', ['apply', '--yes', '--json']);
  if (a.exitCode !== 0) throw new Error(`apply exited ${a.exitCode}: ${a.stderr.slice(-2000)}`);
  const plan: Measured[] = [];
  const status: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    log(`round ${i + 1}/${runs}: no-op plan, then status`);
    plan.push(await edgectl('plan', ['plan', '--json', '--detailed-exitcode']));
    status.push(await edgectl('status', ['status', '--json']));
  }
  const bad = [...plan.filter((m) => m.exitCode !== 0), ...status.filter((m) => m.exitCode !== 0)];
  if (bad.length) throw new Error(`${bad[0].label} exited ${bad[0].exitCode}: ${bad[0].stdout.slice(-1500)}${bad[0].stderr.slice(-1500)}`);
  const summary = JSON.parse(status[status.length - 1].stdout).summary;
  const result = {
    nodes, runs, cpus: os.cpus().length, loadAvg1: os.loadavg()[0],
    plan: { wallS: plan.map((m) => m.wallS), medianS: median(plan.map((m) => m.wallS)), maxRssMb: Math.max(...plan.map((m) => m.maxRssMb)) },
    status: { wallS: status.map((m) => m.wallS), medianS: median(status.map((m) => m.wallS)), maxRssMb: Math.max(...status.map((m) => m.maxRssMb)), summary },
  };
  const ratio = result.status.medianS / result.plan.medianS;
  process.stdout.write(`${nodes} nodes, ${runs} runs each (median wall): no-op plan ${result.plan.medianS.toFixed(2)} s, status ${result.status.medianS.toFixed(2)} s = ${ratio.toFixed(2)}× (goal ≤ 1.0×); status peak RSS ${result.status.maxRssMb.toFixed(0)} MB; ${summary.healthy}/${summary.nodes} healthy\n`);
  await mkdir(path.join(repo, 'bench', 'out'), { recursive: true });
  await writeFile(path.join(repo, 'bench', 'out', `status-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ ...result, ratio }, null, 2));
} finally {
  await endRunProcs(tmp, spawned);
  await farm.stop();
  await rm(tmp, { recursive: true, force: true });
}
