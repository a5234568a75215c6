/**
 * Benchmark: edgectl apply over a slow link through a relay, against the minimal apply
 * (baseline.sh: one OpenSSH connection and one exec per node, tar on stdin) in the same run.
 *
 *   npm run build && npx vite-node bench/fleet-apply/wan.ts -- --nodes 50 --delay-ms 50 --concurrency 16
 *   ... --rounds 3 --jitter-ms 5 --bandwidth 1250000 --offset 300 --ansible --ansible-timeout-min 15 --keep
 *
 * N edge nodes (real sshd each, farm.ts) behind one relay (another farm sshd). Between this
 * machine and the relay sits a delaying TCP proxy (test/helpers/wan-proxy.ts: --delay-ms one
 * way, so 2× that RTT, plus the TCP handshake's RTT), and every connection to an edge rides
 * inside the relay's connection, as on a 4G or satellite uplink to a site. Measured per tool:
 * first apply, no-op, and `--rounds` one-app changes (the shop site's index.html, on every
 * edge), the order of the two tools alternating per round. Both tools use the same
 * concurrency. edgectl's figures come from `apply --json` (turns per node, handshakes).
 * Goal (issue 15): the change costs edgectl ≤ 1.5× the baseline.
 *
 * Needs root, /usr/sbin/sshd, nginx, ssh, tar, /usr/bin/time; Ansible only with --ansible.
 * Writes bench/out/fleet-apply-wan-<time>.json.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from '../../src/cli/output.js';
import { startWanProxy, type WanStats } from '../../test/helpers/wan-proxy.js';
import { parseRecap, writeAnsible } from './ansible.js';
import { baselineArgv, baselineCounts, baselineEnv, writeBaselineList, type BaselineNode } from './baseline.js';
import { startFarm } from './farm.js';
import { changeShopSite, writeBenchFleet } from './fleet.js';
import { checkServing } from './http-check.js';
import { measure, type Measured } from './measure.js';
import { endRunProcs } from './procs.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const nodes = Number(opt('nodes', '50'));
const delayMs = Number(opt('delay-ms', '50'));
const jitterMs = Number(opt('jitter-ms', '0'));
const bandwidth = opt('bandwidth', '') ? Number(opt('bandwidth', '')) : undefined;
const concurrency = Number(opt('concurrency', '16'));
const rounds = Number(opt('rounds', '2'));
const offset = Number(opt('offset', '0'));
const timeoutMin = Number(opt('timeout-min', '60'));
const keep = args.includes('--keep');
if (!Number.isInteger(nodes) || nodes < 1 || offset + nodes + 1 > 500) throw new Error('--nodes: 1 to 499 (with --offset)');
if (!(delayMs >= 0) || !(jitterMs >= 0) || !(concurrency >= 1) || !(rounds >= 1)) throw new Error('--delay-ms, --jitter-ms ≥ 0; --concurrency, --rounds ≥ 1');

const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
// A node's release root must lie in a directory of edgectl's own, e.g. /srv/edgectl-* (fleet/values.ts).
const tmp = await mkdtemp('/srv/edgectl-efw-');
await chmod(tmp, 0o755);
let tornDown = false;
const spawned: number[] = [];
let stopWan: (() => Promise<void>) | undefined;
let stopFarm: (() => Promise<void>) | undefined;
async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  await stopWan?.();
  const n = await endRunProcs(tmp, spawned);
  await stopFarm?.();
  if (n) log(`teardown: ended ${n} processes of this run`);
  if (keep) log(`kept ${tmp}`);
  else await rm(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void teardown().finally(() => process.exit(130)));
const watchdog = setTimeout(() => {
  log(`time limit of ${timeoutMin} min reached: tearing down`);
  void teardown().finally(() => process.exit(1));
}, timeoutMin * 60_000);
watchdog.unref();

interface Row {
  tool: string;
  step: string;
  wallS: number;
  cpuS: number;
  maxRssMb: number;
  loadAvg1: number;
  ok: boolean;
  wire: { up: number; down: number; connections: number };
  /** edgectl: turns per node as its report counts them (+1 for the state read); handshakes. */
  turns?: { changedNodeMax?: number; changedNodeMean?: number; changed: number; unchanged: number };
  note?: string;
}
const rows: Row[] = [];
let failed = false;

const delta = (a: WanStats, b: WanStats) => ({ up: b.up - a.up, down: b.down - a.down, connections: b.connections - a.connections });
const tail = (s: string, n = 1500) => (s.length > n ? `…${s.slice(-n)}` : s);

try {
  const dir = path.join(tmp, `n${nodes}`);
  const logs = path.join(dir, 'logs');
  await mkdir(logs, { recursive: true });
  log(`== ${nodes} edges behind a relay, ${delayMs} ms one way in front of it (jitter ${jitterMs} ms${bandwidth ? `, ${bandwidth} B/s` : ''}), concurrency ${concurrency}`);
  const farm = await startFarm(dir, nodes + 1, log, offset);
  spawned.push(...farm.sshdPids);
  stopFarm = farm.stop;
  const edges = farm.nodes.slice(0, nodes);
  const relayNode = farm.nodes[nodes];
  const wan = await startWanProxy({ listen: { host: '127.0.0.1' }, target: { host: relayNode.address, port: 22 }, delayMs, jitterMs, bandwidth });
  stopWan = wan.close;
  const relay = { name: 'relay-1', address: '127.0.0.1', port: wan.port, hostKey: relayNode.hostKey, httpAddress: relayNode.address };
  const knownHosts = path.join(dir, 'known_hosts');
  await writeFile(knownHosts, (await readFile(farm.knownHosts, 'utf8')) + `[127.0.0.1]:${wan.port} ${relayNode.hostKey}\n`);
  const fleetE = await writeBenchFleet(path.join(dir, 'fleet-e'), edges, { rootsDir: path.join(dir, 'e'), httpPort: 8080, clientKey: farm.clientKey, relay });
  const fleetB = await writeBenchFleet(path.join(dir, 'fleet-b'), edges, { rootsDir: path.join(dir, 'b'), httpPort: 8082, clientKey: farm.clientKey, relay });
  const bNodes: BaselineNode[] = [...edges.map((n) => ({ name: n.name, address: n.address, port: 22 })), { name: relay.name, address: relay.address, port: relay.port, hop: 'master' as const }];
  const bList = path.join(dir, 'baseline-nodes.txt');
  const bEnv = baselineEnv({ clientKey: farm.clientKey, knownHosts, tmp, relay: { host: relay.address, port: relay.port } });

  const run = async (label: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<Measured> =>
    measure(label, argv, { timeoutMs: 20 * 60_000, logPrefix: path.join(logs, label), env: env ?? { ...process.env, NO_COLOR: '1' }, onSpawn: (pid) => spawned.push(pid) });
  const edgectlCli = (...a: string[]) => [process.execPath, path.join(repo, 'bin/run.js'), ...a];
  const renderB = async (label: string) => {
    const r = await run(`render-b-${label}`, edgectlCli('render', '--fleet', fleetB.dir, '--out', path.join(dir, 'bundles-b')));
    if (r.exitCode !== 0) throw new Error(`edgectl render exited ${r.exitCode}: ${tail(r.stderr)}`);
    const count = await writeBaselineList(bList, bNodes, fleetB.roots, path.join(dir, 'bundles-b'));
    log(`baseline: ${count} node bundles rendered (${label})`);
  };

  const edgectlStep = async (step: string, expectChanged?: number) => {
    log(`edgectl ${step}`);
    const before = wan.stats();
    const m = await run(`edgectl-${step.replace(/\W+/g, '-')}`, edgectlCli('apply', '--fleet', fleetE.dir, '--yes', '--json', '--concurrency', String(concurrency)));
    const wire = delta(before, wan.stats());
    let turns: Row['turns'];
    let note: string | undefined;
    try {
      const rep = JSON.parse(m.stdout) as { nodes: { node: string; outcome: string; turns?: number }[] };
      const changed = rep.nodes.filter((n) => n.outcome === 'applied');
      const t = changed.map((n) => (n.turns ?? 0) + 1);
      turns = { changed: changed.length, unchanged: rep.nodes.filter((n) => n.outcome === 'unchanged').length, ...(t.length ? { changedNodeMax: Math.max(...t), changedNodeMean: t.reduce((a, b) => a + b, 0) / t.length } : {}) };
      const bad = rep.nodes.filter((n) => n.outcome !== 'applied' && n.outcome !== 'unchanged');
      if (bad.length) note = `${bad.length} nodes ${bad[0].outcome}`;
      if (expectChanged !== undefined && changed.length !== expectChanged) note = [note, `${changed.length} applied, expected ${expectChanged}`].filter(Boolean).join('; ');
    } catch {
      note = `no JSON report: ${tail(m.stderr, 300)}`;
    }
    const ok = m.exitCode === 0 && !note;
    rows.push({ tool: 'edgectl', step, wallS: m.wallS, cpuS: m.cpuS, maxRssMb: m.maxRssMb, loadAvg1: os.loadavg()[0], ok, wire, turns, note });
    log(`edgectl ${step}: ${m.wallS.toFixed(2)} s, ${JSON.stringify(turns)}, wire ${JSON.stringify(wire)}${note ? `, ${note}` : ''}`);
    if (m.exitCode !== 0) throw new Error(`edgectl apply (${step}) exited ${m.exitCode}:\n${tail(m.stdout)}\n${tail(m.stderr)}`);
  };
  const baselineStep = async (step: string, mode: 'apply' | 'noop') => {
    log(`baseline ${step}`);
    const before = wan.stats();
    const m = await run(`baseline-${step.replace(/\W+/g, '-')}`, baselineArgv(mode, bList, concurrency), bEnv);
    const wire = delta(before, wan.stats());
    const c = baselineCounts(m.stdout);
    const note = c.failed ? `${c.failed} nodes failed` : undefined;
    rows.push({ tool: 'baseline', step, wallS: m.wallS, cpuS: m.cpuS, maxRssMb: m.maxRssMb, loadAvg1: os.loadavg()[0], ok: m.exitCode === 0, wire, note });
    log(`baseline ${step}: ${m.wallS.toFixed(2)} s, ${JSON.stringify(c)}, wire ${JSON.stringify(wire)}`);
    if (m.exitCode !== 0) throw new Error(`baseline ${mode} exited ${m.exitCode}:\n${tail(m.stdout)}\n${tail(m.stderr)}`);
  };

  await edgectlStep('apply (first)');
  await renderB('first');
  await baselineStep('apply (first)', 'apply');
  await edgectlStep('apply (no-op)', 0);
  await baselineStep('apply (no-op)', 'noop');
  for (let r = 1; r <= rounds; r++) {
    const v = `v${r}`;
    await changeShopSite(fleetE.dir, v);
    await changeShopSite(fleetB.dir, v);
    await renderB(v);
    const step = `one-app change ${r}`;
    if (r % 2) {
      await edgectlStep(step, nodes);
      await baselineStep(step, 'apply');
    } else {
      await baselineStep(step, 'apply');
      await edgectlStep(step, nodes);
    }
    const site = { domain: 'www.shop.bench.test', expect: `<p>${v}</p>` };
    const e = await checkServing(edges, 8080, fleetE.apps, site);
    const b = await checkServing(edges, 8082, fleetB.apps, site);
    log(`round ${r}: edgectl's nodes serving ${v}: ${e.nodesServingSite}/${nodes}; baseline's: ${b.nodesServingSite}/${nodes}`);
    if (e.nodesServingSite !== nodes || b.nodesServingSite !== nodes) throw new Error(`round ${r}: not every node serves ${v} (edgectl ${e.nodesServingSite}, baseline ${b.nodesServingSite})`);
  }
  if (args.includes('--ansible')) {
    if (spawnSync('ansible-playbook', ['--version']).status !== 0) log('--ansible: ansible-playbook is not installed; skipped');
    else await runAnsible();
  }

  /**
   * For the record: the same first apply and one-app change with Ansible (Debian's, tuned as in
   * ansible.ts: forks 50, pipelining, ControlPersist), every edge reached through one master
   * connection to the relay that the timed command opens first (ssh -W over it, as the baseline).
   */
  async function runAnsible(): Promise<void> {
    const limitMin = Number(opt('ansible-timeout-min', '15'));
    const fleetA = await writeBenchFleet(path.join(dir, 'fleet-a'), edges, { rootsDir: path.join(dir, 'a'), httpPort: 8081, clientKey: farm.clientKey, relay });
    const bundles = path.join(dir, 'bundles-a');
    const render = async () => {
      const r = await run('render-a', edgectlCli('render', '--fleet', fleetA.dir, '--out', bundles));
      if (r.exitCode !== 0) throw new Error(`edgectl render (Ansible's bundles) exited ${r.exitCode}`);
    };
    await render();
    const ctl = path.join(dir, 'ansible-relay-mux');
    const sshBase = ['-F', '/dev/null', '-i', farm.clientKey, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes'];
    const setup = await writeAnsible(path.join(dir, 'ansible'), { nodes: edges, roots: fleetA.roots, bundles, clientKey: farm.clientKey, knownHosts, forks: 50, sshCommonArgs: `-o ProxyCommand="ssh -F /dev/null -o ControlPath=${ctl} -W %h:%p relay"` });
    const q = (a: string[]) => a.map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ');
    const script = `${q(['ssh', ...sshBase, '-o', 'ControlMaster=yes', '-o', `ControlPath=${ctl}`, '-o', 'ControlPersist=yes', '-f', '-N', '-p', String(relay.port), 'root@127.0.0.1'])} || exit 90
${q(['ansible-playbook', setup.playbook])}; rc=$?
ssh -o ControlPath=${q([ctl])} -O exit relay 2>/dev/null; exit $rc`;
    const env = { ...process.env, ANSIBLE_CONFIG: setup.cfg, ANSIBLE_FORCE_COLOR: '0', ANSIBLE_NOCOLOR: '1' };
    const playbook = async (step: string) => {
      await endRunProcs(setup.controlDir, []);
      log(`ansible-playbook ${step} (forks 50, limit ${limitMin} min)`);
      const before = wan.stats();
      const m = await measure(`ansible-${step.replace(/\W+/g, '-')}`, ['bash', '-c', script], { env, cwd: setup.dir, timeoutMs: limitMin * 60_000, logPrefix: path.join(logs, `ansible-${step.replace(/\W+/g, '-')}`), onSpawn: (pid) => spawned.push(pid) });
      const wire = delta(before, wan.stats());
      const recap = parseRecap(m.stdout);
      const ok = !m.timedOut && m.exitCode === 0 && recap.hosts === nodes && recap.failed === 0 && recap.unreachable === 0;
      rows.push({ tool: 'ansible f=50', step, wallS: m.wallS, cpuS: m.cpuS, maxRssMb: m.treeRssMb, loadAvg1: os.loadavg()[0], ok, wire, note: `${m.timedOut ? 'stopped at the limit: a lower bound; ' : ''}${recap.hosts} hosts, changed=${recap.changed}, failed=${recap.failed}, unreachable=${recap.unreachable}; RSS is the tree's` });
      log(`ansible ${step}: ${m.wallS.toFixed(2)} s${m.timedOut ? ' (stopped at the limit)' : ''}, ${JSON.stringify(recap)}`);
      await endRunProcs(setup.controlDir, []);
      return ok;
    };
    if (!(await playbook('apply (first)'))) return;
    await changeShopSite(fleetA.dir, 'vA');
    await render();
    await playbook('one-app change A');
  }
} catch (e) {
  failed = true;
  log(`benchmark failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
} finally {
  await teardown();
  clearTimeout(watchdog);
}

const t: (string | number)[][] = [];
for (const r of rows) {
  t.push([r.tool, r.step, r.wallS.toFixed(2), r.cpuS.toFixed(2), r.maxRssMb.toFixed(0), r.loadAvg1.toFixed(1), r.turns?.changedNodeMax ? `${r.turns.changedNodeMax} (${r.turns.changed} applied)` : r.turns ? `- (${r.turns.unchanged} unchanged)` : '', `${r.wire.up}/${r.wire.down}`, r.wire.connections, [r.ok ? 'ok' : 'FAILED', r.note].filter(Boolean).join('; ')]);
}
console.log(table(['tool', 'step', 'wall s', 'CPU s', 'peak RSS MB', 'load', 'turns/changed node', 'bytes up/down', 'TCP conns', 'check'], t));
const ratio = (step: string) => {
  const e = rows.find((r) => r.tool === 'edgectl' && r.step === step);
  const b = rows.find((r) => r.tool === 'baseline' && r.step === step);
  return e && b ? e.wallS / b.wallS : undefined;
};
const steps = [...new Set(rows.map((r) => r.step))];
const ratios = Object.fromEntries(steps.map((s) => [s, ratio(s)]));
for (const [s, q] of Object.entries(ratios)) if (q !== undefined) console.log(`  ${s}: edgectl / baseline = ${q.toFixed(2)}×${s.startsWith('one-app') ? ` (goal ≤ 1.5×: ${q <= 1.5 ? 'met' : 'NOT met'})` : ''}`);
const outDir = path.join(repo, 'bench', 'out');
await mkdir(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const doc = { benchmark: 'fleet-apply-wan', date: new Date().toISOString(), machine: { cpus: os.cpus().length, node: process.version }, options: { nodes, delayMs, jitterMs, bandwidth: bandwidth ?? null, concurrency, rounds }, rows, ratios };
const file = path.join(outDir, `fleet-apply-wan-${stamp}.json`);
await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
log(`figures written to ${path.relative(repo, file)}`);
process.exit(failed ? 1 : 0);
