/**
 * Metering's CPU per access-log line, in the agent's process: the old path (the chunk decoded to a
 * string, split, the regular expression per line, an object and a key string per line: what the
 * agent did before) against the current one (bytes: AccessLog.read over a real file, fastAccessBytes,
 * LineCounter), alternated in one run. CPU time (user + system, GC included) per line.
 *
 *   npx vite-node bench/metering-parse.ts [--lines N] [--rounds R] [--proxy]
 *
 * Lines as nginx writes them for the metering-cost bench (a static page, two tenants interleaved);
 * --proxy gives them upstream times and cache statuses, as a proxied app's would be.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAccessLine } from '../src/lib/agent/metering/access-line.js';
import { AccessLog, type LogPosition } from '../src/lib/agent/metering/access-log.js';
import { addSample, emptyMinutes, LineCounter, type Minutes } from '../src/lib/agent/metering/minutes.js';
import { silentLogger } from '../src/lib/logger.js';

const arg = (name: string, dflt: number) => { const i = process.argv.indexOf(name); return i === -1 ? dflt : Number(process.argv[i + 1]); };
const LINES = arg('--lines', 300_000);
const ROUNDS = arg('--rounds', 5);
const PROXY = process.argv.includes('--proxy');

const t0 = Date.parse('2026-12-02T06:00:00Z');
let text = '';
for (let i = 0; i < LINES; i++) {
  const t = new Date(t0 + Math.floor(i / 30_000) * 1000).toISOString().replace('.000Z', '+00:00');
  const tenant = i % 3 === 0 ? 'globex' : 'acme';
  const up = PROXY ? `0.00${i % 10}` : '';
  const cache = PROXY ? (i % 2 ? 'HIT' : 'MISS') : '';
  text += `{"time":"${t}","tenant":"${tenant}","app":"web","host":"www.${tenant}.test","method":"GET","uri":"/","status":200,"bytes_sent":1087,"request_length":78,"request_time":0.000,"upstream_time":"${up}","cache":"${cache}","remote_addr":"127.0.0.1"}\n`;
}
const data = Buffer.from(text);
const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-bench-parse-'));
const file = path.join(dir, 'access.log');
writeFileSync(file, data);

/** What the agent did before (access-log.ts readChunk + meter.ts's onLine), on the same data in 1 MiB chunks. */
function oldPath(m: Minutes): number {
  let n = 0;
  for (let off = 0; off < data.length;) {
    const chunk = Buffer.allocUnsafe(Math.min(1 << 20, data.length - off));
    data.copy(chunk, 0, off, off + chunk.length);
    const end = chunk.lastIndexOf(0x0a) + 1;
    const lines = chunk.toString('utf8', 0, end).split('\n');
    lines.pop();
    for (const line of lines.filter((l) => l.length > 0)) {
      const l = parseAccessLine(line);
      if (typeof l === 'object') { addSample(m, { ...l, app: `${l.tenant}.${l.app}` }); n++; }
    }
    off += end;
  }
  return n;
}

async function newPath(m: Minutes): Promise<number> {
  const log = new AccessLog({ path: file, pidFile: path.join(dir, 'none.pid'), rotateBytes: 1 << 30, maxBytes: 1 << 30 }, silentLogger);
  const counter = new LineCounter();
  const pos: LogPosition = { file: null, offset: 0, garbage: 0, unattributed: 0 };
  let n = 0;
  while (!(await log.read(pos, Date.now(), (l) => { counter.add(m, l); n++; })));
  return n;
}

function cpuUs(): number { const u = process.cpuUsage(); return u.user + u.system; }

async function main(): Promise<void> {
  console.log(`metering parse: ${LINES} lines (${(data.length / LINES).toFixed(0)} bytes each${PROXY ? ', proxied' : ''}), ${ROUNDS} rounds, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const res: Record<'old' | 'new', number[]> = { old: [], new: [] };
  let check: Record<string, unknown> = {};
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (const arm of (r % 2 ? ['new', 'old'] : ['old', 'new']) as ('old' | 'new')[]) {
      const m = emptyMinutes();
      const c = cpuUs();
      const n = arm === 'old' ? oldPath(m) : await newPath(m);
      const us = (cpuUs() - c) / n;
      if (n !== LINES) throw new Error(`${arm}: ${n} lines counted of ${LINES}`);
      if (r > 0) res[arm].push(us); // round 0 warms up
      check[arm] = m.open;
    }
    if (JSON.stringify(check.old) !== JSON.stringify(check.new)) throw new Error('the two paths disagree');
    check = {};
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`CPU per line: old ${med(res.old).toFixed(3)} µs (${res.old.map((x) => x.toFixed(3)).join(' ')}), new ${med(res.new).toFixed(3)} µs (${res.new.map((x) => x.toFixed(3)).join(' ')})`);
  console.log(`load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
