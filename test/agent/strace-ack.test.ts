import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BIN, REPO } from '../helpers/paths.js';
import { freePorts } from '../helpers/ports.js';
import { AGENT_NODE_OPTIONS, sha, waitFor } from './helpers.js';

// The syscall check of issue 18: under strace, every 202 is written to its socket after an
// fdatasync of the spool's log that began after the log write holding that message and ended
// before the 202. Markers in the bodies find the log writes; the ids in the 202s find the answers.

interface Call { name: string; fd: string; data: string; start: number; end: number; result: string }

/** strace -f output (one event per line; a call split by another thread's is "<unfinished ...>" then "<... name resumed>"). */
export function parseStrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  text.split('\n').forEach((line, i) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const [, pid, rest] = m;
    const resumed = /^<\.\.\. (\w+) resumed>(.*?)\)?\s*=\s*(-?\d+.*)$/.exec(rest);
    if (resumed) {
      const c = open.get(pid);
      if (!c) return;
      open.delete(pid);
      c.data += resumed[2];
      c.end = i;
      c.result = resumed[3];
      return;
    }
    const call = /^(\w+)\((\d+<[^>]*>)?(.*)$/.exec(rest);
    if (!call) return;
    const c: Call = { name: call[1], fd: call[2] ?? '', data: call[3], start: i, end: i, result: '' };
    if (c.data.endsWith('<unfinished ...>')) {
      c.data = c.data.slice(0, -'<unfinished ...>'.length);
      c.end = -1;
      open.set(pid, c);
    } else {
      c.result = /\)\s*=\s*(-?\d+.*)$/.exec(c.data)?.[1] ?? '';
    }
    calls.push(c);
  });
  return calls;
}

let dir: string;
let proc: ChildProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-strace-'));
});

afterAll(async () => {
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('syscall order (strace)', () => {
  it('writes every 202 after the fdatasync that covers its message', async () => {
    const [port, adminPort, deadUpstream] = await freePorts(3);
    const trace = path.join(dir, 'strace.txt');
    const data = path.join(dir, 'data');
    proc = spawn('strace', ['-f', '-qq', '-y', '-s', '4096', '-e', 'trace=write,writev,pwrite64,fdatasync,fsync', '-o', trace,
      process.execPath, BIN, 'agent', '--node', 'st', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`, '--role', 'edge', '--data', data,
      '--upstream', `http://127.0.0.1:${deadUpstream}/v1/forward`, '--heartbeat-seconds', '0', '--token', `acme:${sha('tok')}`, '--topic', 'acme/s'],
    { cwd: REPO, stdio: 'ignore', env: { ...process.env, NO_COLOR: '1', NODE_OPTIONS: AGENT_NODE_OPTIONS } });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200, 90_000, 'the agent under strace');
    const idOf = new Map<string, string>();
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; i < 25; i++) {
        const marker = `mark${c}x${i}z`;
        const r = await fetch(`http://127.0.0.1:${port}/v1/q/s`, { method: 'POST', body: marker, headers: { authorization: 'Bearer tok' } });
        const text = await r.text();
        expect(r.status, text).toBe(202);
        idOf.set(marker, (JSON.parse(text) as { id: string }).id);
      }
    }));
    // SIGTERM to the agent itself (strace would detach and leave it running), then strace ends with it.
    const gone = new Promise((r) => proc!.once('exit', r));
    const agentPid = Number((await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8')).trim().split(/\s+/)[0]);
    process.kill(agentPid, 'SIGTERM');
    await gone;
    const calls = parseStrace(await readFile(trace, 'utf8'));
    const logWrites = calls.filter((c) => /^(write|writev|pwrite64)$/.test(c.name) && /\/spool\/\d+\.log>$/.test(c.fd));
    const syncs = calls.filter((c) => (c.name === 'fdatasync' || c.name === 'fsync') && /\/spool\/\d+\.log>$/.test(c.fd) && c.result.startsWith('0'));
    const answers = calls.filter((c) => /^(write|writev)$/.test(c.name) && c.data.includes('HTTP/1.1 202'));
    expect(logWrites.length).toBeGreaterThan(0);
    expect(idOf.size).toBe(200);
    expect(syncs.length).toBeGreaterThan(0);
    const late: string[] = [];
    for (const [marker, id] of idOf) {
      const w = logWrites.find((c) => c.data.includes(marker));
      const a = answers.find((c) => c.data.includes(`${id}\\"`)); // strace prints the JSON's quotes as \"
      expect(w, `the log write holding ${marker}`).toBeDefined();
      expect(a, `the 202 carrying ${id}`).toBeDefined();
      const file = (fd: string) => fd.slice(fd.indexOf('<'));
      const covered = syncs.some((s) => file(s.fd) === file(w!.fd) && s.start > w!.end && s.end >= 0 && s.end < a!.start);
      if (!covered) late.push(`${id} (${marker}): log write at line ${w!.end + 1}, 202 at line ${a!.start + 1}`);
    }
    expect(late).toEqual([]);
  }, 180_000);
});
