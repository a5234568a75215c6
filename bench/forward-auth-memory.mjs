#!/usr/bin/env node
// Memory of a hop under hostile and heavy POST /v1/forward: prints figures, asserts nothing.
// Run after `npm run build`:  node bench/forward-auth-memory.mjs [--concurrency 100] [--mib 16]
//
// A real relay agent (its own process, as deployed: NODE_OPTIONS=--max-semi-space-size=4) on
// 127.0.0.1:21950. Three rounds, each N concurrent bodies of M MiB:
//   1. unauthenticated: refused (401) before the body is read;
//   2. with a valid credential, against the default in-flight bound (32 MiB): the rest get 503;
//   3. the same against --forward-inflight-bytes 64 MiB + 4 KiB (four bodies at once).
// For each: the agent's RSS before, its peak during (VmHWM, reset before the round) and after,
// and what the clients were answered. Goal for round 1 (issue 10): RSS grows under 20 MB.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i === -1 ? dflt : Number(process.argv[i + 1]); };
const N = arg('--concurrency', 100);
const MIB = arg('--mib', 16);
const PORT = 21950;
const dir = mkdtempSync(path.join(os.tmpdir(), 'edgectl-bench-fwd-'));
const sha = (s) => createHash('sha256').update(s).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const SECRET = 'bench-edge-credential';
const children = new Set();
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch { /* gone */ } rmSync(dir, { recursive: true, force: true }); });

const proc = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const resetPeak = (pid) => { try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true; } catch { return false; } };

async function startRelay(name, port, extra) {
  const p = spawn(process.execPath, ['bin/run.js', 'agent', '--node', name, '--role', 'relay', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${port + 1}`,
    '--data', path.join(dir, name), '--upstream', 'http://127.0.0.1:9/v1/forward', '--accept-forward', `bench-edge:${sha(SECRET)}`,
    '--topic', 'acme/events', '--spool-bytes', String(8 * 2 ** 30), '--heartbeat-seconds', '0', ...extra],
  { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=4' } });
  children.add(p);
  for (let i = 0; i < 300; i++) {
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) return p;
    await sleep(50);
  }
  throw new Error(`${name} did not start`);
}

/** One POST /v1/forward with a body of `head` + `body` (written as they are: one shared buffer for every request). */
function send(port, headers, head, body) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/forward', agent: false,
      headers: { 'content-type': 'application/vnd.edgectl.batch', 'content-length': head.length + body.length, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', () => resolve(String(res.statusCode)));
    });
    req.on('error', (e) => resolve(e.code ?? 'error'));
    req.write(head);
    req.end(body);
  });
}

/** The head of a valid batch holding one message of `len` bytes (the message bytes follow it). */
function batchHead(id, len) {
  const header = Buffer.from(JSON.stringify({ v: 2, m: [[id, 'acme', 'events', 'application/octet-stream', Date.now(), len]] }));
  const l = Buffer.alloc(4);
  l.writeUInt32BE(header.length);
  return Buffer.concat([l, header]);
}

async function round(title, p, port, makeRequest) {
  await sleep(1500);
  const before = proc(p.pid, 'VmRSS');
  const exact = resetPeak(p.pid);
  let sampled = before;
  const timer = setInterval(() => { sampled = Math.max(sampled, proc(p.pid, 'VmRSS')); }, 20);
  const t0 = Date.now();
  const answers = await Promise.all(Array.from({ length: N }, (_, i) => makeRequest(i)));
  const ms = Date.now() - t0;
  clearInterval(timer);
  const peak = exact ? proc(p.pid, 'VmHWM') : sampled;
  await sleep(1500);
  const after = proc(p.pid, 'VmRSS');
  const tally = {};
  for (const a of answers) tally[a] = (tally[a] ?? 0) + 1;
  console.log(`${title}\n  ${N} x ${MIB} MiB in ${ms} ms; answers ${JSON.stringify(tally)}`);
  console.log(`  agent RSS: before ${before.toFixed(1)} MB, peak ${peak.toFixed(1)} MB (+${(peak - before).toFixed(1)}), after ${after.toFixed(1)} MB (+${(after - before).toFixed(1)})${exact ? '' : ' (peak sampled every 20 ms)'}`);
}

const body = Buffer.alloc(Math.round(MIB * 2 ** 20), 120);
const auth = { authorization: `Bearer ${SECRET}` };
const relay = await startRelay('bench-relay', PORT, []);
// Warm up: one small accepted forward and one refused, so the first round does not pay for loading code.
await send(PORT, auth, batchHead('bench-edge:w:1', 5), Buffer.from('hello'));
await send(PORT, {}, Buffer.alloc(0), Buffer.alloc(1024));
console.log(`forward-auth-memory: node ${process.version}, ${os.cpus().length} CPUs`);
await round('1. unauthenticated (no Authorization)', relay, PORT, () => send(PORT, {}, Buffer.alloc(0), body));
await round('1b. a wrong credential', relay, PORT, () => send(PORT, { authorization: 'Bearer guess' }, Buffer.alloc(0), body));
let id = 0;
const valid = (port) => () => { const head = batchHead(`bench-edge:b:${++id}`, body.length); return send(port, auth, head, body); };
await round('2. a valid credential, default in-flight bound (32 MiB)', relay, PORT, valid(PORT));
const wide = await startRelay('bench-relay-64', PORT + 10, ['--forward-inflight-bytes', String((64 << 20) + 4096)]);
await send(PORT + 10, auth, batchHead('bench-edge:w:2', 5), Buffer.from('hello'));
await round('3. a valid credential, --forward-inflight-bytes 64 MiB + 4 KiB', wide, PORT + 10, valid(PORT + 10));
process.exit(0);
