import { readFileSync, readdirSync } from 'node:fs';

/**
 * /proc reading for pid files: a pid is only ours if the process with it started when we
 * recorded (field 22 of /proc/PID/stat, in clock ticks since boot), so a reused pid is never
 * signalled. Linux only, like the rest of the node side.
 */
export interface ProcStat {
  pid: number;
  pgrp: number;
  start: number;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces and ")".
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); pgrp is field 5, starttime field 22.
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const pgrp = Number(rest[2]);
  const start = Number(rest[19]);
  return Number.isInteger(pgrp) && Number.isInteger(start) ? { pid, pgrp, start } : undefined;
}

/** Live processes of process group `leader` started no earlier than it (its forks: php-cgi's own children). */
export function groupMembers(leader: number, leaderStart: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const s = procStat(Number(n));
    if (s && s.pgrp === leader && s.start >= leaderStart) out.push(s.pid);
  }
  return out;
}

export function signalPid(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}
