#!/usr/bin/env node
// HTTPQ benchmark: prints figures, asserts nothing. Run after `npm run build`:
//   node bench/httpq.mjs [--quick]
//   node bench/httpq.mjs --intake --runs 5   (intake figures only, five runs in a row, min/median/max ratio)
// Ports 21900-21999 on 127.0.0.1 (BENCH_PORT_BASE moves them), data under $BENCH_DIR (default: a temp dir on the same filesystem as /tmp).
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncRate, jetstreamRate } from './probes.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
// --intake: only the intake figures (disk, ceiling, JetStream, 1 and 64 connections, NDJSON); --runs N: that many times in a row.
const INTAKE_ONLY = process.argv.includes('--intake');
const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1] ?? 1) || 1;
// Ports P..P+99 (BENCH_PORT_BASE, default 21900).
const P = Number(process.env.BENCH_PORT_BASE ?? 21900);
const TARGET = QUICK ? 200_000 : 1_000_000;
const dir = process.env.BENCH_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'edgectl-bench-'));
mkdirSync(dir, { recursive: true });
const sha = (s) => createHash('sha256').update(s).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const results = [];
const report = (name, value, note = '') => { results.push([name, value, note]); console.log(`  ${name}: ${value}${note ? `  (${note})` : ''}`); };
const children = new Set();
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch { /* already gone */ } });

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function waitListening(port, ms = 30_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x' }); return; } catch { /* not up yet */ }
    await sleep(50);
  }
  throw new Error(`nothing listening on ${port}`);
}

async function waitHealthy(port, ms = 30_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).status) return; } catch { /* not up yet */ }
    await sleep(20);
  }
  throw new Error(`agent on ${port} did not start`);
}

/** Data dir per agent port: where each agent keeps the admin token that /status needs. */
const dataDirs = new Map();

function agent(name, port, args, env = {}) {
  dataDirs.set(port, args[args.indexOf('--data') + 1]);
  const p = spawn(process.execPath, ['bin/run.js', 'agent', '--node', name, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${port + 1}`, '--heartbeat-seconds', '0', ...args],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4', ...env } });
  p.log = '';
  p.stderr.setEncoding('utf8').on('data', (d) => { p.log += d; if (p.log.length > 100_000) p.log = p.log.slice(-50_000); });
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}

async function stop(p, signal = 'SIGTERM') {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await gone;
}

async function status(port) {
  const token = readFileSync(path.join(dataDirs.get(port), 'admin-token'), 'utf8').trim();
  return (await fetch(`http://127.0.0.1:${port + 1}/status`, { headers: { authorization: `Bearer ${token}` } })).json();
}

function wrk(url, connections, seconds, lua, threads = connections > 1 ? 2 : 1) {
  const script = path.join(dir, `wrk-${connections}.lua`);
  writeFileSync(script, lua);
  const out = execFileSync('wrk', ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '-s', script, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return { rps, non2xx, total };
}

const ndjsonLua = (token, lines, size) => `local line = '{"v":"' .. string.rep("x", ${Math.max(0, size - 8)}) .. '"}'\nlocal t = {}\nfor i = 1, ${lines} do t[i] = line end\nwrk.method = "POST"\nwrk.body = table.concat(t, "\\n") .. "\\n"\nwrk.headers["Authorization"] = "Bearer ${token}"\nwrk.headers["Content-Type"] = "application/x-ndjson"\n`;
const postLua = (token, body) => `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Authorization"] = "Bearer ${token}"\nwrk.headers["Content-Type"] = "application/json"\n`;

async function ndjsonRate(port, token, batches, perBatch, concurrency, size) {
  const line = JSON.stringify({ v: 'x'.repeat(Math.max(0, size - 8)) });
  const body = Array.from({ length: perBatch }, () => line).join('\n') + '\n';
  let sent = 0, msgs = 0, failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < batches) {
      sent++;
      const r = await fetch(`http://127.0.0.1:${port}/v1/q/bulk`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' } });
      await r.arrayBuffer();
      if (r.status === 202) msgs += perBatch; else failed++;
    }
  }));
  return { rate: msgs / ((performance.now() - t0) / 1000), msgs, failed };
}


/** One intake measurement: disk, ceiling, JetStream, the edge at 1 and 64 connections, NDJSON. Returns the running edge. */
async function intakeRun(run, edgeArgs, edgeData, token, ratios) {
  const tag = RUNS > 1 ? ` [run ${run}]` : '';
  console.log('disk');
  const fsync = fsyncRate(dir);
  report(tag + 'fdatasync/s on the spool filesystem', fmt(fsync));

  console.log('ceiling: do-nothing Node HTTP server');
  // Same shape as the agent: its own process, answering 202 with a small JSON body.
  const noopProc = spawn(process.execPath, ['-e', `require('http').createServer((q,s)=>{q.resume();q.on('end',()=>{s.writeHead(202,{'content-type':'application/json'});s.end('{"id":"x"}')})}).listen(${P + 90},'127.0.0.1')`], { stdio: 'ignore' });
  children.add(noopProc);
  await waitListening(P + 90);
  const ceiling = wrk(`http://127.0.0.1:${P + 90}/v1/q/single`, 64, QUICK ? 3 : 5, postLua(token, '{"temp":21.5,"device":"d-0001"}'));
  report(tag + 'do-nothing Node server, 64 connections', `${fmt(ceiling.rps)} req/s`);
  await stop(noopProc, 'SIGKILL');

  console.log('NATS JetStream (file storage, acked publishes, 64 in flight, 32-byte bodies)');
  const jsRate = await jetstreamRate(QUICK ? 20_000 : 50_000, 64, 32);
  report(tag + 'JetStream acked publish rate', `${fmt(jsRate)} msg/s`, 'JetStream does not fsync each ack by default');

  console.log('edge agent: durable single POSTs (upstream absent, so only intake runs)');
  const edge = agent('bench-edge', P + 10, edgeArgs);
  await waitHealthy(P + 11);
  // The disk is shared: measure its fdatasync rate right before and after, next to the 1-connection run.
  const fsBefore = fsyncRate(edgeData, 1500);
  const one = wrk(`http://127.0.0.1:${P + 10}/v1/q/single`, 1, QUICK ? 3 : 5, postLua(token, '{"temp":21.5,"device":"d-0001"}'));
  const fsAfter = fsyncRate(edgeData, 1500);
  report(tag + 'durable POSTs at 1 connection', `${fmt(one.rps)} acks/s`, `fdatasync/s on the same filesystem just before/after: ${fmt(fsBefore)}/${fmt(fsAfter)}; acks at 1 connection must not exceed it`);
  const syncs0 = (await status(P + 10)).store.commit?.syncs;
  const many = wrk(`http://127.0.0.1:${P + 10}/v1/q/single`, 64, QUICK ? 5 : 10, postLua(token, '{"temp":21.5,"device":"d-0001"}'));
  const syncs = (await status(P + 10)).store.commit?.syncs - syncs0;
  ratios.push(many.rps / jsRate);
  report(tag + 'durable POSTs at 64 connections', `${fmt(many.rps)} acks/s`, `${many.non2xx} non-2xx; ${(many.rps / jsRate).toFixed(2)}x JetStream, ${(many.rps / ceiling.rps * 100).toFixed(0)}% of the no-op ceiling` +
    (Number.isFinite(syncs) ? `; ${fmt(syncs)} synced batches (one fdatasync each), ${(many.total / syncs).toFixed(1)} acks per sync` : ''));

  console.log('edge agent: NDJSON batches (wrk, 4 connections, 1000 x ~64-byte messages per request; 50 warm-up batches first)');
  let peakFill = rssMb(edge.pid);
  const sampler = setInterval(() => { peakFill = Math.max(peakFill, rssMb(edge.pid)); }, 100);
  await ndjsonRate(P + 10, token, 50, 1000, 4, 64);
  // wrk rather than fetch: a fetch client in Node took most of a core and capped the figure
  // below what the agent takes. Every 202 is 1000 messages stored, checked against the depth.
  const before = (await status(P + 10)).totals.depth;
  const ndSecs = QUICK ? 1 : 2;
  const nd = wrk(`http://127.0.0.1:${P + 10}/v1/q/bulk`, 4, ndSecs, ndjsonLua(token, 1000, 64), 1);
  const stored = (await status(P + 10)).totals.depth - before;
  const acked = (nd.total - nd.non2xx) * 1000;
  clearInterval(sampler);
  // wrk stops its clock with up to one request per connection in flight: stored but not counted.
  if (stored < acked || stored - acked > 4 * 1000) throw new Error(`NDJSON: ${fmt(acked)} messages acknowledged but the depth grew by ${fmt(stored)}`);
  report(tag + 'NDJSON batch intake', `${fmt(acked / ndSecs)} msg/s`, `${fmt(acked)} messages acknowledged in ${ndSecs} s, ${nd.non2xx} failed requests; depth grew by ${fmt(stored)}`);

  return { edge, peakFill };
}

async function main() {
  console.log(`HTTPQ benchmark ${new Date().toISOString()} on ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; data in ${dir}`);
  const token = 'bench-token';
  const tokenArgs = ['--token', `bench:${sha(token)}`, '--topic', 'bench/single', '--topic', 'bench/bulk', '--spool-bytes', String(8 * 2 ** 30)];
  // Forwarding credentials: the edge's for the relay, the relay's (passing the edge's on) for the hub.
  const cred = (node) => { const file = path.join(dir, `${node}.credential`); writeFileSync(file, `credential-of-${node}`, { mode: 0o600 }); return { file, sha: sha(`credential-of-${node}`) }; };
  const edgeCred = cred('bench-edge');
  const relayCred = cred('bench-relay');
  tokenArgs.push('--credential-file', edgeCred.file);

  const edgeData = path.join(dir, 'edge');
  const edgeArgs = ['--role', 'edge', '--data', edgeData, '--upstream', `http://127.0.0.1:${P + 20}/v1/forward`, ...tokenArgs];
  const ratios = [];
  let edge, peakFill;
  for (let run = 1; run <= RUNS; run++) {
    if (RUNS > 1) console.log(`\nrun ${run} of ${RUNS}`);
    ({ edge, peakFill } = await intakeRun(run, edgeArgs, edgeData, token, ratios));
    if (run < RUNS || INTAKE_ONLY) { await stop(edge); rmSync(edgeData, { recursive: true, force: true }); }
  }
  if (ratios.length > 1) {
    const r = [...ratios].sort((a, b) => a - b);
    report('durable 64-connection POSTs / JetStream over the runs', `min ${r[0].toFixed(2)}x, median ${r[Math.floor(r.length / 2)].toFixed(2)}x, max ${r[r.length - 1].toFixed(2)}x`, `${r.length} runs: ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  }
  if (INTAKE_ONLY) return summary();

  console.log(`filling the edge spool to ${fmt(TARGET)} waiting messages`);
  let depth = (await status(P + 10)).totals.depth;
  while (depth < TARGET) {
    const need = Math.min(100, Math.ceil((TARGET - depth) / 1000));
    await ndjsonRate(P + 10, token, need, 1000, 4, 64);
    peakFill = Math.max(peakFill, rssMb(edge.pid));
    depth = (await status(P + 10)).totals.depth;
  }
  report('waiting in the edge spool', fmt(depth));
  report('edge peak RSS while filling', `${peakFill.toFixed(0)} MB`);

  console.log('restart with that backlog');
  await stop(edge);
  const t0 = performance.now();
  edge = agent('bench-edge', P + 10, edgeArgs);
  await waitHealthy(P + 11);
  const restartMs = performance.now() - t0;
  const startupMs = Number(/"startupMs":(\d+)/.exec(edge.log)?.[1] ?? NaN);
  const st = await status(P + 10);
  report('restart: process spawn to /healthz', `${fmt(restartMs)} ms`, 'includes Node + oclif start-up');
  report('restart: spool open + listen inside the agent', `${fmt(startupMs)} ms`, `${fmt(st.totals.depth)} waiting, no scan`);
  report('edge RSS after restart with the backlog', `${rssMb(edge.pid).toFixed(0)} MB`);

  console.log('drain edge -> relay -> hub -> JetStream');
  const stream = `EDGECTL_BENCH_${randomBytes(3).toString('hex')}`;
  const prefix = stream.toLowerCase();
  const topics = ['--topic', 'bench/single', '--topic', 'bench/bulk', '--spool-bytes', String(8 * 2 ** 30)];
  const hub = agent('bench-hub', P + 30, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `nats://127.0.0.1:4222?stream=${stream}&prefix=${prefix}`,
    '--accept-forward', `bench-relay:${relayCred.sha}:bench-edge`, ...topics]);
  const relay = agent('bench-relay', P + 20, ['--role', 'relay', '--data', path.join(dir, 'relay'), '--upstream', `http://127.0.0.1:${P + 30}/v1/forward`,
    '--credential-file', relayCred.file, '--accept-forward', `bench-edge:${edgeCred.sha}`, ...topics]);
  await waitHealthy(P + 31);
  await waitHealthy(P + 21);
  const { connect } = await import('nats');
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const jsm = await nc.jetstreamManager();
  const inStream = async () => { try { return (await jsm.streams.info(stream)).state.messages; } catch { return 0; } };
  const window = QUICK ? 15_000 : 30_000;
  let peakDrain = 0;
  const d0 = performance.now();
  const startCount = await inStream();
  while (performance.now() - d0 < window) {
    await sleep(1000);
    peakDrain = Math.max(peakDrain, rssMb(edge.pid));
  }
  const moved = (await inStream()) - startCount;
  const secs = (performance.now() - d0) / 1000;
  report('drain rate edge -> relay -> hub -> JetStream', `${fmt(moved / secs)} msg/s`, `${fmt(moved)} messages in ${secs.toFixed(0)} s`);
  report('edge peak RSS while draining', `${peakDrain.toFixed(0)} MB`);
  await jsm.streams.delete(stream).catch(() => {});
  await nc.close();
  for (const p of [edge, relay, hub]) await stop(p);

  summary();
}

function summary() {
  console.log('\nsummary');
  for (const [k, v, n] of results) console.log(`| ${k} | ${v} | ${n} |`);
  console.log(`load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  if (!process.env.BENCH_DIR) rmSync(dir, { recursive: true, force: true });
}

// exit() rather than exitCode: a child still running (the no-op server) would keep the bench alive for ever.
main().catch((err) => { console.error(err); process.exit(1); });
