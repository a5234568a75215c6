import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Spool } from '../../src/lib/agent/store/spool.js';
import { silentLogger as log } from '../../src/lib/logger.js';
import { Meter, type MeterOptions } from '../../src/lib/agent/metering/meter.js';
import type { UsageMinute } from '../../src/lib/agent/telemetry.js';
import { AccessLog, type LogPosition } from '../../src/lib/agent/metering/access-log.js';

// Metering against a real store and real files, with the test in nginx's place (it writes the
// log, and reopens it after the agent's rotation): every crash window, deterministically.
// test/agent/metering.test.ts does the same end to end with real nginx and SIGKILL.

let dir: string;
beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-meterlog-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

const T0 = Date.parse('2026-12-02T06:00:00Z');
const line = (tenant: string, app: string, ms: number, status = 200, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ time: new Date(ms).toISOString().replace('.000Z', '+00:00'), tenant, app, host: 'x.example', method: 'GET', uri: '/', status, bytes_sent: 100, request_length: 10, request_time: 0, upstream_time: '', cache: '', remote_addr: '127.0.0.1', ...extra }) + '\n';

/** An agent's store and meter, opened as a restarted agent would. */
async function agentOn(data: string, o: Partial<MeterOptions> & { logPath: string }): Promise<{ spool: Spool; meter: Meter }> {
  const spool = new Spool({ dataDir: data, log, node: 'n1' });
  await spool.open();
  const meter = new Meter(spool, { node: 'n1', httpq: false, graceMs: 1000, accessLog: { path: o.logPath, pidFile: path.join(dir, 'no-nginx.pid'), rotateBytes: o.accessLog?.rotateBytes ?? 1 << 30, drainMs: 0 }, ...o }, log);
  return { spool, meter };
}

/** Every usage message in the store (the forwarder never ran: nothing was taken out). */
async function usage(spool: Spool): Promise<UsageMinute[]> {
  const b = await spool.readBatch(1_000_000, 1 << 30);
  return b.messages().filter((m) => m.tenant === '_agent' && m.topic === 'usage').map((m) => JSON.parse(m.body.toString()) as UsageMinute);
}

describe('metering from the access log (store and files real, the test playing nginx)', () => {
  it('ships each closed minute once per tenant and app; a partial last line waits; garbage is counted and skipped', async () => {
    const logPath = path.join(dir, 'a.log');
    await writeFile(logPath, line('acme', 'web', T0 + 1000) + line('acme', 'web', T0 + 2000, 404) + line('globex', 'shop', T0 + 3000) + 'not json\n{"tenant":"acme"}\n' + line('-', '-', T0 + 3000) + '{"time":"2026-12-02T06:00:04+00:00","tenant":"ac');
    const { spool, meter } = await agentOn(path.join(dir, 'd1'), { logPath });
    expect(await meter.tick(T0 + 10_000)).toBe(0); // minute 06:00 still open
    expect(meter.position?.nginx?.garbage).toBe(2);
    expect(meter.position?.nginx?.unattributed).toBe(1);
    const partialAt = meter.position!.nginx!.offset;
    await appendFile(logPath, 'me","app":"web","status":200,"bytes_sent":5,"request_length":1}\n');
    await meter.tick(T0 + 20_000);
    expect(meter.position!.nginx!.offset).toBeGreaterThan(partialAt);
    // A line of the next minute, past the grace: 06:00 closes.
    await appendFile(logPath, line('acme', 'web', T0 + 61_500));
    expect(await meter.tick(T0 + 61_600)).toBe(2);
    const rows = await usage(spool);
    expect(rows.map((r) => [r.tenant, r.app, r.minute, r.requests, r.status['2xx'], r.status['4xx'], r.bytesOut, r.bytesIn])).toEqual([
      ['acme', 'acme.web', '2026-12-02T06:00:00.000Z', 3, 2, 1, 205, 21],
      ['globex', 'globex.shop', '2026-12-02T06:00:00.000Z', 1, 1, 0, 100, 10],
    ]);
    // The wall clock closes a minute once the reader has caught up: 06:01 without any later line.
    expect(await meter.tick(T0 + 120_000 + 1500)).toBe(1);
    expect((await usage(spool)).map((r) => [r.minute, r.requests])).toContainEqual(['2026-12-02T06:01:00.000Z', 1]);
    await spool.close();
  });

  it('a restart resumes at the stored offset with the open minutes it had: each minute shipped once, with every line', async () => {
    const logPath = path.join(dir, 'b.log');
    const data = path.join(dir, 'd2');
    await writeFile(logPath, line('acme', 'web', T0 + 1000).repeat(5) + line('acme', 'web', T0 + 62_000));
    let a = await agentOn(data, { logPath });
    expect(await a.meter.tick(T0 + 62_500)).toBe(1); // 06:00 shipped; 06:01 open with one line
    await a.spool.close(); // the agent dies
    await appendFile(logPath, line('acme', 'web', T0 + 70_000).repeat(3));
    a = await agentOn(data, { logPath });
    expect(await a.meter.tick(T0 + 80_000)).toBe(0);
    await a.spool.close(); // and again, with 06:01 open (4 lines read, stored as open)
    await appendFile(logPath, line('acme', 'web', T0 + 125_000));
    a = await agentOn(data, { logPath });
    expect(await a.meter.tick(T0 + 126_000)).toBe(1);
    expect(await a.meter.tick(T0 + 127_000)).toBe(0); // nothing new: no second copy
    const rows = await usage(a.spool);
    expect(rows.map((r) => [r.minute, r.requests])).toEqual([['2026-12-02T06:00:00.000Z', 5], ['2026-12-02T06:01:00.000Z', 4]]);
    await a.spool.close();
  });

  it('a failed store write moves nothing: the same lines are read again and counted once', async () => {
    const logPath = path.join(dir, 'c.log');
    const data = path.join(dir, 'd3');
    await writeFile(logPath, line('acme', 'web', T0 + 1000).repeat(4) + line('acme', 'web', T0 + 62_000));
    const a = await agentOn(data, { logPath });
    await a.spool.close(); // every write now fails
    expect(await a.meter.tick(T0 + 63_000)).toBe(0);
    expect(a.meter.stats.failures).toBe(1);
    await a.spool.open();
    expect(await a.meter.tick(T0 + 64_000)).toBe(1);
    expect((await usage(a.spool)).map((r) => [r.minute, r.requests])).toEqual([['2026-12-02T06:00:00.000Z', 4]]);
    await a.spool.close();
  });

  it('a backlog larger than one step reads (16 MB here) is read over several steps with every line counted (issue 14: one per step was lost)', async () => {
    // A step's read budget used to end its last read inside a line: the start of that line was
    // taken for a "line longer than a chunk" and the rest for garbage, so one request per budget
    // exhausted was lost (seen only in the garbage count). That needs a step with more than 16 MB
    // to read: a busy nginx (~60,000 requests in a few seconds at ~250 bytes a line) and an agent
    // a little behind (a restart, a slow step).
    const logPath = path.join(dir, 'big.log');
    const one = line('acme', 'web', T0 + 1000);
    const n = Math.ceil((40 << 20) / one.length); // two and a half steps' worth, in minute 06:00
    await writeFile(logPath, one.repeat(n) + line('acme', 'web', T0 + 62_000));
    const { spool, meter } = await agentOn(path.join(dir, 'd6'), { logPath, accessLog: { path: logPath, pidFile: path.join(dir, 'no-nginx.pid'), rotateBytes: 1 << 30, drainMs: 0, maxBytes: 16 << 20 } });
    let steps = 0;
    while ((await usage(spool)).length === 0 && steps < 10) { await meter.tick(T0 + 62_500); steps++; }
    expect(steps).toBeGreaterThanOrEqual(2); // not read in one step: the budget was hit
    expect(meter.position?.nginx?.garbage).toBe(0);
    expect((await usage(spool)).map((r) => [r.minute, r.requests])).toEqual([['2026-12-02T06:00:00.000Z', n]]);
    await spool.close();
  });

  it('a small read budget never splits a line, whatever the lengths of the lines', async () => {
    const logPath = path.join(dir, 'budget.log');
    const lines = Array.from({ length: 3000 }, (_, i) => line('acme', 'web', T0 + i, 200, { uri: `/${'x'.repeat(i % 997)}` }));
    await writeFile(logPath, lines.join(''));
    const a = new AccessLog({ path: logPath, pidFile: '', rotateBytes: 1 << 30, maxBytes: 1000 }, log);
    const pos: LogPosition = { file: null, offset: 0, garbage: 0, unattributed: 0 };
    let counted = 0;
    let calls = 0;
    while (!(await a.read(pos, T0, () => { counted++; })) && calls < 100_000) calls++;
    expect(calls).toBeGreaterThan(0);
    expect({ counted, garbage: pos.garbage }).toEqual({ counted: lines.length, garbage: 0 });
  });

  it('rotation: the agent renames the log past its size, finishes the old file, keeps one rotated file, and a restart in between loses nothing', async () => {
    const logPath = path.join(dir, 'r', 'access.log');
    const data = path.join(dir, 'd4');
    await rm(path.dirname(logPath), { recursive: true, force: true });
    await mkdir(path.dirname(logPath));
    await writeFile(logPath, '');
    const rotateBytes = 4096;
    let a = await agentOn(data, { logPath, accessLog: { path: logPath, pidFile: '', rotateBytes } });
    let written = 0;
    let t = T0 + 1000;
    const write = async (n: number) => {
      // nginx's side: it writes to the file it has open, whatever its name now.
      const live = await stat(logPath).then(() => logPath, () => `${logPath}.1`);
      for (let i = 0; i < n; i++) { await appendFile(live, line('acme', 'web', t)); written++; t += 200; }
    };
    for (let round = 0; round < 12; round++) {
      await write(10);
      await a.meter.tick(t);
      // nginx "reopens" (USR1) only every other round, so the reader also meets a missing log and a late write into the old file.
      const files = await readdir(path.dirname(logPath));
      if (!files.includes('access.log') && round % 2 === 1) {
        await appendFile(`${logPath}.1`, line('acme', 'web', t)); written++;
        await writeFile(logPath, '');
      }
      if (round === 5 || round === 8) { await a.spool.close(); a = await agentOn(data, { logPath, accessLog: { path: logPath, pidFile: '', rotateBytes } }); }
      expect(files.filter((f) => f.startsWith('access.log')).length).toBeLessThanOrEqual(2);
    }
    if (!(await readdir(path.dirname(logPath))).includes('access.log')) await writeFile(logPath, '');
    for (let i = 0; i < 4; i++) await a.meter.tick(t + i * 10);
    await a.meter.tick(t + 120_000);
    const rows = await usage(a.spool);
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(written);
    expect(new Set(rows.map((r) => r.minute)).size).toBe(rows.length);
    expect((await readdir(path.dirname(logPath))).sort()).toEqual(['access.log', 'access.log.1']);
    // Bounded: each file at most its size limit plus what "nginx" wrote before the next step (two rounds here, ~5 KB).
    for (const f of ['access.log', 'access.log.1']) expect((await stat(path.join(path.dirname(logPath), f))).size).toBeLessThan(rotateBytes + 6000);
    await a.spool.close();
  });

  it.each([[[] as number[]], [[7, 19]]])('rotation while the reader is behind: a log nginx fills faster than a step reads is still rotated, and every line is counted once (agent restarted after rounds %j)', async (restarts) => {
    const logPath = path.join(dir, `rb${restarts.length}`, 'access.log');
    await rm(path.dirname(logPath), { recursive: true, force: true });
    await mkdir(path.dirname(logPath));
    await writeFile(logPath, '');
    const rotateBytes = 8192;
    // A step reads one whole 1 MB chunk (the budget, 4 KB, stops it after the first).
    const data = path.join(dir, `d7-${restarts.length}`);
    const open = () => agentOn(data, { logPath, accessLog: { path: logPath, pidFile: '', rotateBytes, drainMs: 0, maxBytes: 4096 } });
    let a = await open();
    const files = async () => (await readdir(path.dirname(logPath))).filter((f) => f.startsWith('access.log'));
    const size = (f: string) => stat(path.join(path.dirname(logPath), f)).then((s) => ({ ino: s.ino, size: s.size }), () => undefined);
    let written = 0;
    let t = T0 + 1000;
    let rotations = 0;
    let behind = 0;
    let biggest = 0;
    let last: number | undefined;
    for (let round = 0; round < 30; round++) {
      // nginx's side: ~1.5 MB a round into the file it has open, reopened at once after a rename.
      if (!(await files()).includes('access.log')) await writeFile(logPath, '');
      let text = '';
      for (let i = 0; i < 6000; i++) { text += line('acme', 'web', t); t += 1; }
      await appendFile(logPath, text);
      written += 6000;
      await a.meter.tick(t);
      const live = await size('access.log');
      const old = await size('access.log.1');
      // A rotation renames the live log to PATH.1: a new inode there.
      if (old && old.ino !== last) { rotations++; last = old.ino; }
      // Unread bytes after this step: the rest of the reader's file, and the live one if it is on PATH.1.
      const pos = a.meter.position!.nginx!;
      const on = live?.ino === pos.file?.ino ? live : old;
      const unread = (on ? on.size - pos.offset : 0) + (on === old && live ? live.size : 0);
      if (unread > 0) behind++;
      biggest = Math.max(biggest, live?.size ?? 0, old?.size ?? 0);
      expect((await files()).length).toBeLessThanOrEqual(2);
      // A restart (the store reopened, as after a kill) while behind, maybe mid-way through PATH.1.
      if (restarts.includes(round)) { await a.spool.close(); a = await open(); }
    }
    // Bounded by about two rounds of writes (41 MB were written in all; before, the live log held them all).
    expect(biggest).toBeLessThan(3 << 20);
    expect(behind).toBeGreaterThanOrEqual(25); // the reader was behind after (nearly) every step
    // Before, a log was rotated only once the reader had caught up: here (nearly) never.
    expect(rotations).toBeGreaterThanOrEqual(3);
    // nginx stops; the reader catches up (a missing log reopened as nginx would), then the minutes close.
    for (let i = 0; i < 200; i++) {
      if (!(await files()).includes('access.log')) await writeFile(logPath, '');
      await a.meter.tick(t + i);
    }
    await a.meter.tick(t + 120_000);
    const rows = await usage(a.spool);
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(written);
    expect(a.meter.position!.nginx!.garbage).toBe(0);
    expect(new Set(rows.map((r) => r.minute)).size).toBe(rows.length);
    await a.spool.close();
  });

  it('a line that comes after its minute closed counts in the first open one; cache and upstream times are summarised', async () => {
    const logPath = path.join(dir, 'late.log');
    const cached = (c: string, up: string) => ({ cache: c, upstream_time: up });
    await writeFile(logPath, line('acme', 'api', T0 + 1000, 200, cached('HIT', '')) + line('acme', 'api', T0 + 2000, 200, cached('MISS', '0.120')) + line('acme', 'api', T0 + 3000, 502, cached('BYPASS', '0.010, 0.030')) + line('acme', 'api', T0 + 3000, 200, cached('STALE', '-')) + line('acme', 'api', T0 + 66_000));
    const { spool, meter } = await agentOn(path.join(dir, 'd5'), { logPath });
    expect(await meter.tick(T0 + 66_100)).toBe(1);
    await appendFile(logPath, line('acme', 'api', T0 + 4000)); // a slow worker's line for 06:00, already shipped
    await meter.tick(T0 + 67_000);
    expect(await meter.tick(T0 + 200_000)).toBe(1);
    const rows = await usage(spool);
    expect(rows.map((r) => [r.minute, r.requests])).toEqual([['2026-12-02T06:00:00.000Z', 4], ['2026-12-02T06:01:00.000Z', 2]]);
    expect(rows[0]).toMatchObject({ cache: { hit: 2, miss: 2 }, status: { '2xx': 3, '5xx': 1 }, upstreamMs: { p50: 40, p90: 120, p99: 120, max: 120 } });
    expect(rows[1].upstreamMs).toBeNull();
    await spool.close();
  });
});

describe('HTTPQ intake metering (real store)', () => {
  it('counts what the store acknowledged, per tenant and topic and minute; across a restart totals stay exact and nothing ships twice', async () => {
    const data = path.join(dir, 'h1');
    const open = async () => {
      const spool = new Spool({ dataDir: data, log, node: 'n1' });
      await spool.open();
      return { spool, meter: new Meter(spool, { node: 'n1', httpq: true, graceMs: 1000 }, log) };
    };
    const msgs = (n: number, size: number) => Array.from({ length: n }, () => ({ contentType: 'application/json', body: Buffer.alloc(size, 0x61) }));
    let a = await open();
    await a.meter.tick(T0 + 1000);
    await a.spool.append('acme', 'temp', msgs(3, 10));
    await a.spool.append('globex', 'gps', msgs(1, 7));
    await a.meter.tick(T0 + 30_000);
    await a.spool.close(); // the agent dies before 06:00 is shipped
    a = await open();
    await a.spool.append('acme', 'temp', msgs(2, 10));
    expect(await a.meter.tick(T0 + 61_000)).toBe(2);
    expect(await a.meter.tick(T0 + 62_000)).toBe(0);
    await a.spool.append('acme', 'temp', msgs(4, 5));
    expect(await a.meter.tick(T0 + 121_000)).toBe(1);
    const rows = (await usage(a.spool)).map((r) => [r.source, r.tenant, r.app, r.minute, r.requests, r.bytesIn, r.status['2xx']]);
    expect(rows).toEqual([
      ['httpq', 'acme', 'temp', '2026-12-02T06:00:00.000Z', 5, 50, 5],
      ['httpq', 'globex', 'gps', '2026-12-02T06:00:00.000Z', 1, 7, 1],
      ['httpq', 'acme', 'temp', '2026-12-02T06:01:00.000Z', 4, 20, 4],
    ]);
    await a.spool.close();
  });
});
