/**
 * Benchmark: edgectl plan / apply / no-op apply against ansible-playbook doing the same job on
 * the same real nodes (one sshd and one nginx per node, on loopback addresses 127.0.4.x).
 *
 *   npm run build && npm run bench:fleet                       # 50 then 200 nodes, Ansible forks 50
 *   npm run bench:fleet -- --nodes 50 --forks 50,5             # also Ansible's default forks
 *   npm run bench:fleet -- --nodes 200 --concurrency 64        # pass --concurrency to edgectl apply
 *   npm run bench:fleet -- --ansible-timeout-min 30            # limit per ansible-playbook run (default 20)
 *   npm run bench:fleet -- --nodes 50,200 --skip-ansible       # edgectl against the minimal apply only
 *
 * The minimal apply (baseline.sh: one OpenSSH connection and one exec per node, tar on stdin;
 * --skip-baseline to leave it out) runs after edgectl on the same nodes with the same
 * concurrency; goal (issue 15): edgectl's first apply and no-op ≤ 1.5× it.
 * Over a slow link through a relay: wan.ts.
 *
 * An Ansible run that hits its limit is stopped and reported as a lower bound ("≥"); the nodes
 * are then seeded with the state its first run would have left, so its no-change run is still
 * measured on its own.
 *
 * Needs root (sshd per node, nginx started over SSH as root), /usr/sbin/sshd, nginx, rsync,
 * ansible-playbook and /usr/bin/time. Prints a table and writes bench/out/fleet-apply-<time>.json.
 * Goals (issue 4): no-op apply ≥ 10× faster than Ansible's no-change run, first apply ≥ 5×
 * faster, edgectl's peak RSS < 300 MB at 200 nodes. Everything it starts (sshd, nginx, ssh
 * control masters) and its temp dir are removed at the end, on failure and on Ctrl-C too.
 */
import { chmod, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { endRunProcs } from './procs.js';
import { runSize, type SizeResult } from './run-size.js';
import { printReport, ratios } from './report.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const sizes = opt('nodes', '50,200').split(',').map(Number);
const forks = opt('forks', '50').split(',').map(Number);
const concurrency = opt('concurrency', '');
const timeoutMin = Number(opt('timeout-min', '90'));
const ansibleTimeoutMin = Number(opt('ansible-timeout-min', '20'));
const offset = Number(opt('offset', '0'));
const skipAnsible = args.includes('--skip-ansible');
const skipEdgectl = args.includes('--skip-edgectl');
const skipBaseline = args.includes('--skip-baseline');
/** Keep the temp dir (logs, fleets, bundles) for a look afterwards; processes are still ended. */
const keep = args.includes('--keep');
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || offset + n > 500)) throw new Error('--nodes: counts between 1 and 500 (with --offset)');
if (forks.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--forks: positive integers');

const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// Short temp path (ssh control sockets must fit in 108 bytes), below a data prefix: a node's
// release root must lie in a directory of edgectl's own, e.g. /srv/edgectl-* (src/lib/fleet/values.ts).
const tmp = await mkdtemp('/srv/edgectl-efa-');
// mkdtemp makes it 0700: nginx workers (nobody) must traverse it to serve the static sites.
await chmod(tmp, 0o755);
let tornDown = false;
const spawned: number[] = [];
async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  const n = await endRunProcs(tmp, spawned);
  if (n) log(`teardown: ended ${n} processes of this run`);
  if (keep) log(`kept ${tmp}`);
  else await rm(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: tearing down`);
    void teardown().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  log(`time limit of ${timeoutMin} min reached: tearing down`);
  void teardown().finally(() => process.exit(1));
}, timeoutMin * 60_000);
watchdog.unref();

const results: SizeResult[] = [];
let failed = false;
try {
  for (const n of sizes) {
    results.push(await runSize({ repo, tmp, nodes: n, forks, concurrency, ansibleTimeoutMin, offset, skipAnsible, skipEdgectl, skipBaseline, log, spawned }));
  }
} catch (e) {
  failed = true;
  log(`benchmark failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
} finally {
  await teardown();
  clearTimeout(watchdog);
}

const outDir = path.join(repo, 'bench', 'out');
await mkdir(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const doc = {
  benchmark: 'fleet-apply',
  date: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  options: { sizes, forks, concurrency: concurrency || null, ansibleTimeoutMin },
  results: results.map((r) => ({ ...r, ratios: ratios(r) })),
};
const file = path.join(outDir, `fleet-apply-${stamp}.json`);
await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
await writeFile(path.join(outDir, 'fleet-apply-latest.json'), JSON.stringify(doc, null, 2) + '\n');
printReport(results);
log(`figures written to ${path.relative(repo, file)}`);
process.exit(failed ? 1 : 0);
