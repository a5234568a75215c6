/**
 * Benchmark of `edgectl validate` on large synthetic fleets (test/helpers/gen-fleet.ts).
 *
 *   npm run build && npm run bench:validate            # 10k and 20k edge nodes, 5 runs each
 *   npm run bench:validate -- --runs 9 --split 500     # 500 documents per file instead of one file each
 *
 * Times the whole CLI process (`node bin/run.js validate --fleet DIR`) by wall clock, the way
 * CI runs it, and prints the median of several runs. Apps (2,000) and tenants (200) stay fixed
 * while the edge nodes double, so the 20k/10k ratio shows how cost grows with the node count.
 * Goal: at most 2 s at 10k nodes on a 2-core machine, ratio at most 2.3.
 *
 * Wall time depends on what else the machine runs, so the CPU time of the process (user + sys,
 * from /usr/bin/time when present) and the load average are printed too: on a shared machine
 * they tell whether a slow run was edgectl or its neighbours.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFleet } from '../test/helpers/gen-fleet.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const runs = Number(opt('runs', '5'));
const split = opt('split', 'each') === 'each' ? 'each' : Number(opt('split', 'each'));
const sizes = opt('edges', '10000,20000').split(',').map(Number);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

async function main(): Promise<void> {
  // Under bench/out (BENCH_DIR overrides), not /tmp: see bench/render.ts for what this machine's /tmp costs.
  const parent = process.env.BENCH_DIR ?? path.join(root, 'bench', 'out');
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(path.join(parent, 'validate-'));
  try {
    const results: { edges: number; files: number; median: number; all: number[] }[] = [];
    for (const edges of sizes) {
      const dir = path.join(tmp, `fleet-${edges}`);
      const g = await generateFleet(dir, { edges, apps: 2000, tenants: 200, split });
      const times: number[] = [];
      const cpus: number[] = [];
      // One warm-up run (page cache, V8 code cache) that is not counted.
      for (let i = 0; i <= runs; i++) {
        const argv = [path.join(root, 'bin/run.js'), 'validate', '--fleet', dir];
        const t0 = performance.now();
        const r = timeBin
          ? spawnSync(timeBin, ['-f', 'CPU %U %S', process.execPath, ...argv], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
          : spawnSync(process.execPath, argv, { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
        const ms = performance.now() - t0;
        if (r.status !== 0) throw new Error(`validate exited ${r.status} on the ${edges}-node fleet:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
        const cpu = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
        if (i > 0) {
          times.push(ms);
          if (cpu) cpus.push((Number(cpu[1]) + Number(cpu[2])) * 1000);
        }
      }
      results.push({ edges, files: g.files, median: median(times), all: times });
      const cpuText = cpus.length ? `, CPU (user+sys) median ${(median(cpus) / 1000).toFixed(3)} s` : '';
      console.log(`${edges} edge nodes (${g.nodes} nodes, 2000 apps, 200 tenants, ${g.files} files, split=${split}): wall median ${(median(times) / 1000).toFixed(3)} s  [${times.map((t) => (t / 1000).toFixed(3)).join(', ')}]${cpuText}; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
    }
    if (results.length >= 2) {
      const [a, b] = results;
      console.log(`ratio ${b.edges}/${a.edges}: ${(b.median / a.median).toFixed(2)}× (goal ≤ 2.3×)`);
    }
    const first = results.find((r) => r.edges === 10_000);
    if (first) console.log(`10k goal (≤ 2 s): ${first.median <= 2000 ? 'met' : 'NOT met'} (${(first.median / 1000).toFixed(3)} s)`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
