/**
 * Metering's cost: nginx requests per second (wrk, keep-alive, GET of a tenant's static page)
 * with the edge agent tailing nginx's access log against without it, alternated in one run.
 * Prints figures; exits 0 whatever they are (goal: under 3% lower with the agent).
 *
 *   npm run build && npx vite-node bench/metering-cost.ts [--quick] [--pairs N] [--seconds S] [--baseline DIR]
 *
 * --baseline DIR: a third arm, "base", runs the agent of another built tree of edgectl (DIR/bin/run.js,
 * e.g. the previous commit: git archive + npm run build) on the same node, store and log, so that
 * the agent's CPU per request before and after a change is compared in one run.
 *
 * One edge node applied with `edgectl apply --local` (real nginx, the rendered config and its
 * JSON access log), its agent started from the release's agent.json, shipping to a hub agent with
 * a file sink (the hub runs in both arms). "without": the edge agent is stopped (SIGTERM); "with":
 * it runs, tailing the log, aggregating per tenant/app/minute, rotating the log (and having nginx
 * reopen it) and shipping minutes. Before a "with" run the agent is given time to read what nginx
 * logged while it was stopped (its CPU time settles), so that a run measures the steady cost per
 * request, not a catch-up. Pairs alternate which arm goes first; the figure is the median of the
 * per-pair ratios. On a shared or small machine (wrk, nginx and the agent on the same cores) the
 * agent's CPU comes straight out of nginx's: read the figure with the machine's load beside it.
 * So it also prints CPU time per request served (from /proc) of the agent and of nginx (master
 * and workers): figures the machine's other load moves much less than a rate does. Where nginx is
 * CPU-bound and shares its cores with the agent, the rate drops by about agent / (nginx + agent).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localPortBlock } from '../test/helpers/local-ports.js';
import { freePortRange } from '../test/helpers/ports.js';
import { killNginx, writeTestFleet } from '../test/apply/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'run.js');
const QUICK = process.argv.includes('--quick');
const arg = (name: string, dflt: number) => { const i = process.argv.indexOf(name); return i === -1 ? dflt : Number(process.argv[i + 1]); };
const PAIRS = arg('--pairs', QUICK ? 2 : 5);
const SECONDS = arg('--seconds', QUICK ? 3 : 8);
const CONNECTIONS = 32;
const BASELINE = process.argv.includes('--baseline') ? path.resolve(process.argv[process.argv.indexOf('--baseline') + 1], 'bin', 'run.js') : undefined;
const ADDR = '127.0.31.89';
const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(args: string[]): string {
  const r = spawnSync(args[0], args.slice(1), { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function start(name: string, args: string[], bin = BIN): ChildProcess {
  const p = spawn(process.execPath, [bin, 'agent', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', NODE_OPTIONS: '--max-semi-space-size=4' } });
  let log = '';
  p.stderr!.setEncoding('utf8').on('data', (d: string) => { log = (log + d).slice(-4000); });
  p.once('exit', (code, sig) => { children.delete(p); if (code && !sig) process.stderr.write(`${name} exited ${code}: ${log}\n`); });
  children.add(p);
  return p;
}

async function healthy(admin: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await fetch(`http://${admin}/healthz`).catch(() => undefined)) !== undefined) return;
    await sleep(100);
  }
  throw new Error(`agent on ${admin} did not start`);
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
}

/** utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const cpu = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' '); return Number(f[11]) + Number(f[12]); };

/** CPU ticks of nginx's master and its workers (run/nginx.pid's children). */
function nginxCpu(nodeRoot: string): number {
  const master = Number(readFileSync(path.join(nodeRoot, 'run', 'nginx.pid'), 'utf8').trim());
  const kids = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [master, ...kids].reduce((n, pid) => { try { return n + cpu(pid); } catch { return n; } }, 0);
}

/**
 * Until the agent has read what nginx logged while it was away: under 2 ticks of CPU in 500 ms,
 * twice, and not before 3 s (its first metering step comes a second after it starts: quiet before
 * that is not caught up).
 */
async function settled(p: ChildProcess): Promise<number> {
  const t0 = Date.now();
  let quiet = 0;
  let last = cpu(p.pid!);
  while ((quiet < 2 || Date.now() - t0 < 3000) && Date.now() - t0 < 60_000) {
    await sleep(500);
    const now = cpu(p.pid!);
    quiet = now - last < 2 ? quiet + 1 : 0;
    last = now;
  }
  return Date.now() - t0;
}

/** Asynchronous, so that the agents' stderr pipes keep draining while wrk runs. */
async function wrk(url: string, host: string): Promise<{ rps: number; non2xx: number; errors: string }> {
  const { stdout: out } = await execFileP('wrk', [ '-t', '2', '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '-H', `Host: ${host}`, url], { maxBuffer: 1 << 20 });
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    errors: /Socket errors:[^\n]*/.exec(out)?.[0] ?? '',
  };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-bench-metering-'));
  chmodSync(dir, 0o755);
  const root = path.join(dir, 'nodes');
  try {
    const ports = await localPortBlock(['e1'], ADDR);
    const fleet = path.join(dir, 'fleet');
    await writeTestFleet(fleet, { nodes: ['e1'], apps: [{ name: 'web', tenant: 'acme', domain: 'www.acme.test', nodes: ['e1'], html: `<h1>acme</h1>\n${'<p>static page</p>\n'.repeat(40)}` }] });
    run([process.execPath, BIN, 'apply', '--fleet', fleet, '--local', root, ...ports.flags, '--local-address', ADDR, '--yes']);
    const nodeRoot = path.join(root, 'e1');
    const H = await freePortRange(2);
    const secret = 'bench-credential';
    writeFileSync(path.join(dir, 'e1.credential'), secret, { mode: 0o600 });
    const sha = (await import('node:crypto')).createHash('sha256').update(secret).digest('hex');
    const hub = start('hub', ['--node', 'hub', '--role', 'hub', '--listen', `127.0.0.1:${H}`, '--admin', `127.0.0.1:${H + 1}`, '--data', path.join(dir, 'hub'),
      '--sink', `file:${path.join(dir, 'sink.jsonl')}`, '--accept-forward', `e1:${sha}`, '--heartbeat-seconds', '0']);
    await healthy(`127.0.0.1:${H + 1}`);
    const cfg = JSON.parse(readFileSync(path.join(nodeRoot, 'current', 'agent', 'agent.json'), 'utf8'));
    cfg.upstreams = [`http://127.0.0.1:${H}/v1/forward`];
    cfg.credentialFile = path.join(dir, 'e1.credential');
    const edgeConfig = path.join(dir, 'edge-agent.json');
    writeFileSync(edgeConfig, JSON.stringify(cfg));
    const url = `http://${ADDR}:${ports.of('e1').http}/`;
    const host = 'www.acme.test';
    const log = path.join(nodeRoot, 'log', 'access.log');

    console.log(`metering cost: wrk -t2 -c${CONNECTIONS} -d${SECONDS}s keep-alive GET ${host}/, ${PAIRS} pairs, ${os.cpus().length} CPU(s), load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    await wrk(url, host); // warm-up: nginx's caches, the page in memory
    type Arm = 'without' | 'with' | 'base';
    const agents: Arm[] = BASELINE ? ['with', 'base'] : ['with'];
    const ratios: Record<string, number[]> = { with: [], base: [] };
    /** The agent's own CPU (user + system) per request served during a run with it, in µs. */
    const agentUs: Record<string, number[]> = { with: [], base: [] };
    /** nginx's CPU (master and workers) per request, every arm, in µs. */
    const nginxUs: number[] = [];
    /** The agent's CPU per second with no traffic, in ms (CLK_TCK resolution: 10 ms in 3 s). */
    const idleMs: Record<string, number[]> = { with: [], base: [] };
    const rates: Record<Arm, number[]> = { without: [], with: [], base: [] };
    for (let i = 0; i < PAIRS; i++) {
      const pair: Partial<Record<Arm, number>> = {};
      const arms: Arm[] = ['without', ...agents];
      for (let k = 0; k < i % arms.length; k++) arms.push(arms.shift()!); // each arm goes first in turn
      for (const arm of arms) {
        if (arm !== 'without') {
          const edge = start(arm === 'base' ? 'edge (baseline)' : 'edge', ['--config', edgeConfig], arm === 'base' ? BASELINE : BIN);
          await healthy(cfg.admin);
          const waited = await settled(edge);
          // Its CPU with no traffic (timers, store, heartbeats): part of the figure below, whatever the rate.
          const idle0 = cpu(edge.pid!);
          await sleep(3000);
          idleMs[arm].push(((cpu(edge.pid!) - idle0) / CLK_TCK) * 1000 / 3);
          const ticks = cpu(edge.pid!);
          const nt = nginxCpu(nodeRoot);
          const w = await wrk(url, host);
          const us = ((cpu(edge.pid!) - ticks) / CLK_TCK) * 1e6 / Math.max(1, w.rps * SECONDS);
          agentUs[arm].push(us);
          nginxUs.push(((nginxCpu(nodeRoot) - nt) / CLK_TCK) * 1e6 / Math.max(1, w.rps * SECONDS));
          const logged = statSync(log, { throwIfNoEntry: false })?.size ?? 0; // just rotated: nginx is reopening it
          await stop(edge);
          pair[arm] = w.rps;
          console.log(`  pair ${i + 1} ${arm === 'base' ? 'baseline' : 'with    '}: ${fmt(w.rps)} req/s${w.non2xx ? `, ${w.non2xx} non-2xx` : ''}${w.errors ? `, ${w.errors}` : ''} (agent caught up in ${(waited / 1000).toFixed(1)} s; agent CPU ${us.toFixed(2)} µs, nginx ${nginxUs[nginxUs.length - 1].toFixed(2)} µs per request; idle ${idleMs[arm][idleMs[arm].length - 1].toFixed(1)} ms/s; live log ${fmt(logged / 1024)} KiB; load ${os.loadavg()[0].toFixed(2)})`);
        } else {
          const nt = nginxCpu(nodeRoot);
          const w = await wrk(url, host);
          nginxUs.push(((nginxCpu(nodeRoot) - nt) / CLK_TCK) * 1e6 / Math.max(1, w.rps * SECONDS));
          pair.without = w.rps;
          console.log(`  pair ${i + 1} without : ${fmt(w.rps)} req/s${w.non2xx ? `, ${w.non2xx} non-2xx` : ''}${w.errors ? `, ${w.errors}` : ''} (nginx CPU ${nginxUs[nginxUs.length - 1].toFixed(2)} µs per request; load ${os.loadavg()[0].toFixed(2)})`);
        }
      }
      for (const a of ['without', ...agents] as Arm[]) rates[a].push(pair[a]!);
      for (const a of agents) ratios[a].push(pair[a]! / pair.without!);
    }
    const ng = median(nginxUs);
    for (const a of agents) {
      const m = median(ratios[a]);
      const diff = (1 - m) * 100;
      const name = a === 'base' ? 'baseline agent' : 'agent';
      console.log(`${name}: per-pair with/without ${ratios[a].map((r) => r.toFixed(3)).join(' ')}; median ${(m * 100).toFixed(1)}% of the rate without (${Math.abs(diff).toFixed(1)}% ${diff >= 0 ? 'lower' : 'higher'}; goal: under 3% lower); median rates ${fmt(median(rates[a]))} with vs ${fmt(median(rates.without))} req/s without`);
      const us = median(agentUs[a]);
      console.log(`${name}: CPU per request ${us.toFixed(2)} µs (runs: ${agentUs[a].map((x) => x.toFixed(2)).join(' ')}; idle ${median(idleMs[a]).toFixed(1)} ms/s), nginx ${ng.toFixed(2)} µs (median); where nginx is CPU-bound and the agent shares its cores, requests/s drop by about agent / (nginx + agent) = ${(100 * us / (ng + us)).toFixed(1)}%`);
    }
    console.log(`load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    await stop(hub);
  } finally {
    await killNginx(root);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
