#!/usr/bin/env node
// Durable single POSTs at 64 connections, A/B within one run: alternates edge agents built from
// several checkouts (each already built), with the disk's fdatasync rate and the load average
// next to every figure, and optionally the per-stage trace (EDGECTL_INTAKE_TRACE, store/trace.ts).
//   node bench/intake-ab.mjs --pairs 5 --seconds 8 [--trace] [--js] A=/work/wt/intake-base B=/work/wt/intake
// An entry NAME=DIR:ENV=VALUE,ENV=VALUE adds environment to that agent (e.g. UV_THREADPOOL_SIZE=8).
// Ports BENCH_PORT_BASE (default 34000) + 0..9 on 127.0.0.1.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsyncRate, jetstreamRate } from './probes.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i === -1 ? dflt : process.argv[i + 1]; };
const PAIRS = Number(arg('--pairs', 3));
const SECONDS = Number(arg('--seconds', 8));
const CONNS = Number(arg('--connections', 64));
const TRACE = process.argv.includes('--trace');
const JS = process.argv.includes('--js');
const P = Number(process.env.BENCH_PORT_BASE ?? 34000);
const sides = process.argv.slice(2).filter((a) => /^[A-Za-z0-9_-]+=/.test(a)).map((a) => {
  const [name, rest] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
  const [root, envs] = rest.split(':');
  const env = Object.fromEntries((envs ? envs.split(',') : []).map((kv) => kv.split('=')));
  return { name, root, env };
});
if (sides.length === 0) throw new Error('name at least one side: NAME=DIR');
const dir = mkdtempSync(path.join(os.tmpdir(), 'edgectl-intake-ab-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (s) => createHash('sha256').update(s).digest('hex');
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const token = 'bench-token';

async function run(side, round) {
  const data = path.join(dir, `${side.name}-${round}`);
  const traceFile = path.join(dir, `trace-${side.name}-${round}.json`);
  const env = { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4', ...side.env, ...(TRACE ? { EDGECTL_INTAKE_TRACE: traceFile } : {}) };
  const p = spawn(process.execPath, [path.join(side.root, 'bin/run.js'), 'agent', '--node', 'ab-edge', '--listen', `127.0.0.1:${P}`, '--admin', `127.0.0.1:${P + 1}`, '--heartbeat-seconds', '0',
    '--role', 'edge', '--data', data, '--upstream', `http://127.0.0.1:${P + 9}/v1/forward`, '--token', `bench:${sha(token)}`, '--topic', 'bench/single', '--spool-bytes', String(8 * 2 ** 30)],
  { stdio: ['ignore', 'ignore', 'inherit'], env });
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`http://127.0.0.1:${P}/healthz`)).ok) break; } catch { /* not up */ }
      if (i > 600) throw new Error('agent did not start');
      await sleep(50);
    }
    const adminToken = readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
    const status = async () => (await fetch(`http://127.0.0.1:${P + 1}/status`, { headers: { authorization: `Bearer ${adminToken}` } })).json();
    const fs = fsyncRate(data, 1000);
    const lua = path.join(dir, 'post.lua');
    writeFileSync(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify('{"temp":21.5,"device":"d-0001"}')}\nwrk.headers["Authorization"] = "Bearer ${token}"\nwrk.headers["Content-Type"] = "application/json"\n`);
    // One second of warm-up, then the measured run.
    execFileSync('wrk', ['-t', CONNS > 1 ? '2' : '1', '-c', String(CONNS), '-d', '1s', '-s', lua, `http://127.0.0.1:${P}/v1/q/single`]);
    const s0 = (await status()).store.commit;
    const l0 = load();
    const out = execFileSync('wrk', ['-t', CONNS > 1 ? '2' : '1', '-c', String(CONNS), '-d', `${SECONDS}s`, '--latency', '-s', lua, `http://127.0.0.1:${P}/v1/q/single`], { encoding: 'utf8' });
    const s1 = (await status()).store.commit;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
    const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
    const lat = /Latency Distribution\s+50%\s+(\S+)\s+75%\s+(\S+)\s+90%\s+(\S+)\s+99%\s+(\S+)/.exec(out);
    const syncs = s1.syncs - s0.syncs;
    const r = { side: side.name, round, rps: Math.round(rps), non2xx, fdatasyncPerS: Math.round(fs), acksPerSync: +(total / syncs).toFixed(1), batchesPerSync: +((s1.batches - s0.batches) / syncs).toFixed(2), fdatasyncsPerSync: +((s1.fdatasyncs - s0.fdatasyncs) / syncs).toFixed(2), p50: lat?.[1], p99: lat?.[4], load: `${l0} -> ${load()}` };
    console.log(JSON.stringify(r));
    if (TRACE) { await sleep(1100); console.log(readFileSync(traceFile, 'utf8')); }
    return r;
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
    rmSync(data, { recursive: true, force: true });
  }
}

const all = [];
console.log(`intake A/B ${new Date().toISOString()}, ${os.cpus().length} CPUs, load ${load()}, ${CONNS} connections, ${SECONDS} s per run`);
for (let round = 1; round <= PAIRS; round++) {
  // Alternate the order each round, so neither side always runs first.
  const order = round % 2 ? sides : [...sides].reverse();
  if (JS) console.log(JSON.stringify({ round, jetstream: Math.round(await jetstreamRate(50_000, 64, 32)), load: load() }));
  for (const s of order) all.push(await run(s, round));
}
for (const s of sides) {
  const v = all.filter((r) => r.side === s.name).map((r) => r.rps).sort((a, b) => a - b);
  console.log(`${s.name}: min ${v[0]}, median ${v[Math.floor(v.length / 2)]}, max ${v[v.length - 1]} req/s`);
}
rmSync(dir, { recursive: true, force: true });
