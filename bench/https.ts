/**
 * HTTPS benchmark: device uplink through the edge's own nginx, HTTPS against plain HTTP in the
 * same run, and TLS handshakes per second. Prints figures; exits 0 whatever they are.
 *
 *   npm run build && npx vite-node bench/https.ts [--quick]
 *
 * One edge node applied with `edgectl apply --local` (real nginx, rendered config: Mozilla
 * intermediate, the app's certificate from a CA made here, ECDSA P-256), its agent started from
 * the release's agent.json. Two apps of one tenant, each giving devices the topic `events`: one
 * over plain HTTP, one with spec.tls. wrk sends single-message POSTs to /v1/q/events at 64
 * connections with keep-alive (the agent acknowledges each after its spool is synced), then with
 * `Connection: close` (a full TLS handshake per request: handshakes per second, with the same
 * plain-HTTP run beside it). HTTP and HTTPS alternate, each measured twice; the better of each
 * pair is reported (both runs are printed).
 *
 * wrk sends the URL's host as SNI, and nginx shows no certificate for a name no app serves
 * (ssl_reject_handshake): the apps' names must resolve to 127.0.0.1 for wrk, so wrk runs in a
 * private mount namespace with its own /etc/hosts (`unshare -m`, root only). Nothing else of the
 * machine changes. Ports: a free block from BENCH_PORT_BASE (default 23000).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCa, makeIdentity, writeTlsFleet } from '../test/tls/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const SECONDS = QUICK ? 3 : 8;
const BASE = Number(process.env.BENCH_PORT_BASE ?? 23000);
const ADDR = '127.0.0.1';
const TOKEN = 'bench-device-token';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

function sh(args: string[], env: Record<string, string> = {}): string {
  return execFileSync(args[0], args.slice(1), { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

interface Wrk { rps: number; total: number; errors: string; non2xx: number }
function wrk(dir: string, url: string, connections: number, close: boolean, post = true): Wrk {
  const lua = path.join(dir, `${post ? 'post' : 'get'}-${close ? 'close' : 'keep'}.lua`);
  const body = post ? `wrk.method = "POST"\nwrk.body = '{"temp":21.5,"device":"d-0001"}'\nwrk.headers["Authorization"] = "Bearer ${TOKEN}"\nwrk.headers["Content-Type"] = "application/json"\n` : '';
  writeFileSync(lua, `${body}${close ? 'wrk.headers["Connection"] = "close"\n' : ''}`);
  const hosts = path.join(dir, 'hosts');
  // wrk in its own mount namespace, where the apps' names are loopback (see the header).
  const out = sh(['unshare', '-m', 'sh', '-c', 'mount --bind "$1" /etc/hosts && shift && exec wrk "$@"', 'x', hosts, '-t', '2', '-c', String(connections), '-d', `${SECONDS}s`, '-s', lua, url]);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    total: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    errors: /Socket errors:[^\n]*/.exec(out)?.[0] ?? '',
  };
}

async function waitFor(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgectl-bench-https-'));
  chmodSync(dir, 0o755);
  const scratch = path.join(dir, 'scratch');
  mkdirSync(scratch);
  const fleet = path.join(dir, 'fleet');
  const nodes = path.join(dir, 'nodes');
  try {
    const ca = makeCa(scratch);
    const id = await makeIdentity(path.join(scratch, 'id.txt'));
    await writeTlsFleet(fleet, { ca, recipients: [id.recipient], apps: [{ name: 'secure', domains: ['secure.bench.example'] }], plain: ['plain'] });
    // Devices of tenant acme may POST to the topic events of either app.
    writeFileSync(path.join(fleet, 'tenants.yaml'), `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: { uplink: { tokens: [{ name: bench, sha256: ${sha(TOKEN)} }] } }\n`);
    const apps = readFileSync(path.join(fleet, 'apps.yaml'), 'utf8').replace(/\n(?=---|$)/g, '\n  uplink: { topics: [events] }\n');
    writeFileSync(path.join(fleet, 'apps.yaml'), apps);
    writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 localhost\n127.0.0.1 secure.bench.example plain.acme.example\n');
    const flags = ['--fleet', fleet, '--local', nodes, '--local-port-base', String(BASE), '--local-port-range', '1', '--local-address', ADDR, '--age-identity', id.file];
    sh([process.execPath, 'bin/run.js', 'apply', ...flags, '--yes']);
    const node = path.join(nodes, 'edge-1');
    const http = BASE, agentPort = BASE + 1, https = BASE + 3;
    const agent = spawn(process.execPath, ['bin/run.js', 'agent', '--config', path.join(node, 'current', 'agent', 'agent.json'), '--heartbeat-seconds', '0'], { cwd: ROOT, stdio: 'ignore' });
    children.add(agent);
    await waitFor('the agent', async () => (await fetch(`http://${ADDR}:${agentPort}/healthz`)).ok);
    const nginxVersion = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim();
    console.log(`edge: ${os.cpus().length} CPU(s), ${os.cpus()[0]?.model ?? '?'}; ${nginxVersion}; wrk (2 threads) on the same machine`);
    console.log(`single-message POSTs to /v1/q/events, each acknowledged after the spool's sync, ${SECONDS} s per run\n`);
    const httpUrl = `http://plain.acme.example:${http}/v1/q/events`;
    const httpsUrl = `https://secure.bench.example:${https}/v1/q/events`;
    const warm = wrk(dir, httpsUrl, 8, false);
    if (warm.total === 0) throw new Error(`HTTPS through nginx answered nothing (${warm.errors})`);
    const runs: Record<string, Wrk[]> = { http: [], https: [], httpClose: [], httpsClose: [], hzHttp: [], hzHttps: [] };
    for (let i = 0; i < 2; i++) {
      runs.http.push(wrk(dir, httpUrl, 64, false));
      runs.https.push(wrk(dir, httpsUrl, 64, false));
      runs.httpClose.push(wrk(dir, httpUrl, 64, true));
      runs.httpsClose.push(wrk(dir, httpsUrl, 64, true));
      // nginx alone (GET /healthz, answered by nginx): what the handshakes cost without the agent's sync in the way.
      runs.hzHttp.push(wrk(dir, `http://plain.acme.example:${http}/healthz`, 64, true, false));
      runs.hzHttps.push(wrk(dir, `https://secure.bench.example:${https}/healthz`, 64, true, false));
    }
    const best = (xs: Wrk[]) => xs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const line = (name: string, xs: Wrk[]) => {
      const b = best(xs);
      console.log(`  ${name}: ${fmt(b.rps)} req/s  (runs: ${xs.map((x) => fmt(x.rps)).join(', ')}; non-2xx ${b.non2xx}${b.errors ? `; ${b.errors}` : ''})`);
      return b.rps;
    };
    const h = line('HTTP, 64 connections, keep-alive ', runs.http);
    const s = line('HTTPS, 64 connections, keep-alive', runs.https);
    console.log(`  → HTTPS / HTTP with keep-alive: ${(s / h).toFixed(2)}x (goal: at least 0.8x)\n`);
    const hc = line('HTTP, 64 connections, a new connection per request ', runs.httpClose);
    const sc = line('HTTPS, 64 connections, a new connection per request', runs.httpsClose);
    console.log(`  → ${(sc / hc).toFixed(2)}x plain HTTP connections\n`);
    const zh = line('GET /healthz (nginx only), HTTP, a new connection per request ', runs.hzHttp);
    const zs = line('GET /healthz (nginx only), HTTPS, a new connection per request', runs.hzHttps);
    console.log(`  → TLS handshakes per second on the edge (full ECDHE + ECDSA P-256 handshakes, no resumption: tickets off, wrk keeps no sessions): ${fmt(zs)}/s (${(zs / zh).toFixed(2)}x plain HTTP connections)`);
    const st = await status(node, agentPort);
    console.log(`\nagent spool after the runs: ${st}`);
    agent.kill('SIGTERM');
  } finally {
    try { execFileSync('bash', ['-c', 'for p in "$1"/*/run/nginx.pid; do [ -f "$p" ] && kill "$(cat "$p")"; done; true', 'x', nodes]); } catch { /* none running */ }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function status(node: string, agentPort: number): Promise<string> {
  try {
    const cfg = JSON.parse(readFileSync(path.join(node, 'current', 'agent', 'agent.json'), 'utf8'));
    const token = readFileSync(cfg.adminTokenFile, 'utf8').trim();
    const s = await (await fetch(`http://${ADDR}:${agentPort + 1}/status`, { headers: { authorization: `Bearer ${token}` } })).json() as { queues?: { depth: number }[] };
    return `${fmt((s.queues ?? []).reduce((n, q) => n + q.depth, 0))} messages queued`;
  } catch (e) {
    return `unknown (${(e as Error).message})`;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
