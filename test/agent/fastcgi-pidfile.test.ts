import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { groupMembers, procStat } from '../../src/lib/agent/fastcgi/proc.js';
import { stopLeftovers } from '../../src/lib/agent/fastcgi/pid-file.js';
import { jsonLogger } from '../../src/lib/logger.js';

/**
 * The pid files a new agent acts on are input like any other: a recorded pid is signalled only
 * while /proc shows that pid with the recorded start time (a reused pid is someone else), a
 * file that does not parse is removed without acting on it, pid 1 is never a candidate, and a
 * group is stopped with its members (php-cgi's own children).
 */
const kids: number[] = [];
const groups: number[] = [];
let dir = '';
afterAll(async () => {
  for (const p of kids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const g of groups) try { process.kill(-g, 'SIGKILL'); } catch { /* gone */ }
  if (dir) await rm(dir, { recursive: true, force: true });
});

function sleeper(): number {
  const c = spawn('sleep', ['300'], { stdio: 'ignore' });
  c.unref();
  kids.push(c.pid!);
  return c.pid!;
}

const alive = (pid: number) => procStat(pid) !== undefined;

describe('stopLeftovers', () => {
  it('stops what matches pid and start time, spares a reused pid, drops garbage, never pid 1', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ec-fcgi-pids-'));
    const lines: string[] = [];
    const log = jsonLogger((l) => lines.push(l), 'info');
    // A group leader with a child of its own, as php-cgi with PHP_FCGI_CHILDREN: only the leader is recorded.
    const leader = spawn('sh', ['-c', 'sleep 300 & wait'], { stdio: 'ignore', detached: true });
    const ours = leader.pid!;
    kids.push(ours);
    groups.push(ours);
    const other = sleeper();
    let member: number | undefined;
    for (let i = 0; i < 50 && !member; i++) {
      await new Promise((r) => setTimeout(r, 20));
      member = groupMembers(ours, procStat(ours)!.start).find((p) => p !== ours);
    }
    expect(member).toBeDefined();
    kids.push(member!);
    const oursStart = procStat(ours)!.start;
    await writeFile(join(dir, 'acme.a.100-1.pids'), JSON.stringify({ app: 'acme.a', processes: [{ pid: ours, start: oursStart }] }));
    await writeFile(join(dir, 'acme.b.100-2.pids'), JSON.stringify({ app: 'acme.b', processes: [{ pid: other, start: procStat(other)!.start - 1 }] }));
    await writeFile(join(dir, 'acme.c.100-3.pids'), '{"app": "acme.c", "processes": [{"pid": 1, "start": 0}]}');
    await writeFile(join(dir, 'acme.d.100-4.pids'), '$(reboot)');
    await writeFile(join(dir, 'unrelated.txt'), 'kept');

    const n = await stopLeftovers(dir, log);
    expect(n).toBe(2); // the leader and its child
    expect(alive(ours)).toBe(false);
    expect(alive(other)).toBe(true); // its start time differs: a reused pid, not ours
    expect(alive(member!)).toBe(false); // stopped with its group
    expect(await readdir(dir)).toEqual(['unrelated.txt']);
    expect(lines.join('')).toMatch(/"msg":"fastcgi: stopped processes left by an earlier agent","app":"acme.a","processes":2/);
    expect(lines.join('')).toMatch(/"msg":"fastcgi: unreadable pid file removed"/);
  });
});
