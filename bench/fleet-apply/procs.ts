import { readFileSync, readdirSync } from 'node:fs';
import { alive, signal } from '../../test/helpers/lab-util.js';

/**
 * Process bookkeeping for the benchmark: find every process that belongs to this run (its
 * command line names the run's temp dir, or it descends from a process we spawned) and end
 * exactly those, by pid. Daemons started over SSH (nginx masters, ssh ControlPersist masters)
 * are reparented to init, so pid tracking alone would miss them; their command line does not.
 */
interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  rssKb: number;
}

const PAGE_KB = 4;

export function listProcs(withCmdline = true): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 2 (comm) may contain spaces and parentheses: parse after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(rest[1]);
      const rssPages = Number(rest[21]);
      let cmdline = '';
      if (withCmdline) {
        try {
          cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
        } catch {
          // exited between readdir and read
        }
      }
      out.push({ pid: Number(name), ppid, cmdline, rssKb: rssPages * PAGE_KB });
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

/** pids of roots plus all their descendants. */
export function descendants(procs: ProcInfo[], roots: Set<number>): Set<number> {
  const kids = new Map<number, number[]>();
  for (const p of procs) {
    const list = kids.get(p.ppid) ?? [];
    list.push(p.pid);
    kids.set(p.ppid, list);
  }
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const k of kids.get(pid) ?? []) stack.push(k);
  }
  return seen;
}

/** Processes of this run: those whose command line contains `marker` (the temp dir), their descendants, and descendants of `spawned`. */
export function runProcs(marker: string, spawned: number[] = []): Set<number> {
  const procs = listProcs();
  const roots = new Set<number>(spawned);
  for (const p of procs) if (p.cmdline.includes(marker) && p.pid !== process.pid) roots.add(p.pid);
  const all = descendants(procs, roots);
  all.delete(process.pid);
  const alive = new Set(procs.map((p) => p.pid));
  return new Set([...all].filter((pid) => alive.has(pid)));
}

/** TERM each of the run's processes by pid, wait up to graceMs, then KILL what is left. Returns how many were signalled. */
export async function endRunProcs(marker: string, spawned: number[], graceMs = 4000): Promise<number> {
  const pids = runProcs(marker, spawned);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && [...pids].some(alive)) await new Promise((r) => setTimeout(r, 100));
  // Anything new (a child forked while we waited) or stubborn gets KILL.
  for (const pid of new Set([...pids, ...runProcs(marker, spawned)])) if (alive(pid)) signal(pid, 'SIGKILL');
  return pids.size;
}

/**
 * Samples the summed RSS of a process tree every `everyMs` (stat files only, to stay cheap) until stopped; `peakMb` is the
 * largest sum seen. Used for Ansible, whose work is spread over many forked workers.
 */
export function treeRssSampler(rootPid: number, everyMs = 500): { stop(): number } {
  let peakKb = 0;
  const sample = () => {
    const procs = listProcs(false);
    const tree = descendants(procs, new Set([rootPid]));
    let sum = 0;
    for (const p of procs) if (tree.has(p.pid)) sum += p.rssKb;
    if (sum > peakKb) peakKb = sum;
  };
  const timer = setInterval(sample, everyMs);
  sample();
  return {
    stop() {
      clearInterval(timer);
      return peakKb / 1024;
    },
  };
}
