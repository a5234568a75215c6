/**
 * Render benchmark: all bundles of a generated fleet (N edge nodes, 2,000 apps, 200 tenants)
 * rendered and written to disk. Goal: 10,000 edge nodes in at most 5 s wall (render + write),
 * linear in nodes. Prints the figures; exits 0 whatever they are (it measures, it does not judge).
 *
 *   npm run build && npx vite-node bench/render.ts            # 10000 and 20000 edge nodes
 *   npx vite-node bench/render.ts 2000 5000                   # other sizes
 *   BENCH_DIR=/some/dir …                                     # where fleets and output go (default bench/out/)
 *
 * Uses the built code (dist/), as `edgectl render` does: bundles are written by a worker thread
 * while render goes on (BundleWriter). Per size it prints
 *   - render + write in this process, timed from the loaded fleet to the last file written (the
 *     goal figure: loading and validating the fleet is not render's work, and is printed apart);
 *   - render alone in memory, for context;
 *   - the whole `edgectl render` process (node start, load, validate, render, write) by the clock.
 *
 * The fleet is generated under bench/out/ and rendered to its default output, <fleet>/.edgectl/render,
 * as an operator's checkout would be. Where the files go matters less than this comment used to
 * say: an earlier claim that creating files under /tmp is several times slower did not hold when
 * measured in alternation (runs in the two places interleaved, so both see the same machine):
 * /tmp's median time was 0.92 of the other's, i.e. no slower (issue 15's study). Again on
 * 2026-12-02, 24,000 files in 10,000 directories, 5 rounds alternating /tmp and bench/out/: the
 * ratio per round was 1.36, 1.22, 1.25, 0.75, 0.26, while the same work took 0.6 s in the first
 * round and 7-28 s in the last ones, in either place: the place is noise beside the cache state.
 * Most of the variance is the kernel creating inodes (ext4 without a journal here), not edgectl,
 * and it grows as the dentry and inode caches fill (90,000 empty files: 30 s with 270 MB of
 * reclaimable slab, 2.6 s after dropping caches); the bench prints the slab size before each size
 * so runs can be compared. Compare runs in alternation, never one place's run today with another's
 * yesterday.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFleet } from '../test/helpers/gen-fleet.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The built modules, not the TypeScript sources: the write worker exists only in dist/.
const { loadFleet } = (await import(path.join(root, 'dist/lib/fleet/load.js'))) as typeof import('../src/lib/fleet/load.js');
const { renderFleet, BundleWriter } = (await import(path.join(root, 'dist/lib/render/index.js'))) as typeof import('../src/lib/render/index.js');

const APPS = 2000;
const TENANTS = 200;
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 20_000);

const ms = (t: number) => `${Math.round(t)} ms`;
const cpu = (u: NodeJS.CpuUsage) => `${Math.round((u.user + u.system) / 1000)} ms`;
const slabMb = () => Number(/Slab:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;

console.log(`render benchmark: ${APPS} apps, ${TENANTS} tenants; ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const rows: { edges: number; totalMs: number }[] = [];
for (const edges of sizes) {
  const parent = process.env.BENCH_DIR ?? path.join(root, 'bench', 'out');
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(path.join(parent, 'render-'));
  try {
    const fleetDir = path.join(tmp, 'fleet');
    const out = path.join(fleetDir, '.edgectl', 'render');
    await generateFleet(fleetDir, { edges, apps: APPS, tenants: TENANTS, variety: true });
    const slab = slabMb();
    let t = performance.now();
    const loaded = await loadFleet(fleetDir);
    const loadMs = performance.now() - t;

    // What `edgectl render` does after loading: render, each bundle handed to the writer at once.
    const c0 = process.cpuUsage();
    t = performance.now();
    const writer = new BundleWriter(out);
    const bundles = await renderFleet(loaded, { edgectlVersion: 'bench', onBundle: (b) => writer.add(b) });
    await writer.close();
    const totalMs = performance.now() - t;
    const c1 = process.cpuUsage(c0);
    const files = bundles.reduce((s, b) => s + b.files.length + 1, 0);
    const bytes = bundles.reduce((s, b) => s + b.files.reduce((x, f) => x + f.data.length, 0), 0);

    t = performance.now();
    await renderFleet(loaded, { edgectlVersion: 'bench' });
    const memMs = performance.now() - t;

    // The whole CLI, over the output just written (a re-render: every file replaced).
    t = performance.now();
    const cli = spawnSync(process.execPath, [path.join(root, 'bin/run.js'), 'render', '--fleet', fleetDir, '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const cliMs = performance.now() - t;
    if (cli.status !== 0) throw new Error(`edgectl render exited ${cli.status}: ${cli.stderr.slice(-2000)}`);

    rows.push({ edges, totalMs });
    console.log(`\n${edges} edge nodes (${bundles.length} bundles, ${files} files, ${(bytes / 1048576).toFixed(0)} MiB) written to ${out}; kernel slab ${slab.toFixed(0)} MB before`);
    console.log(`  load + validate fleet         ${ms(loadMs)}   (not render's work; printed for context)`);
    console.log(`  render + write (pipelined)    ${ms(totalMs)}   cpu ${cpu(c1)}   goal ≤ 5000 ms for 10000 nodes`);
    console.log(`  render alone, in memory       ${ms(memMs)}`);
    console.log(`  edgectl render, whole process ${ms(cliMs)}   (node start, load, validate, re-render over the output)`);
    console.log(`  per node                      ${((totalMs * 1000) / bundles.length).toFixed(0)} µs`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
if (rows.length > 1) {
  const [a, b] = [rows[0], rows[rows.length - 1]];
  console.log(`\nlinearity: ${b.edges / a.edges}x nodes took ${(b.totalMs / a.totalMs).toFixed(2)}x the time (render + write)`);
}
