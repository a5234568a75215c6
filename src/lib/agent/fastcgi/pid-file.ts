import { renameSync, writeFileSync } from 'node:fs';
import { readFile, readdir, unlink } from 'node:fs/promises';
import type { Logger } from '../../logger.js';
import { groupMembers, procStat, signalPid } from './proc.js';

/**
 * Pid files under <root>/run/fastcgi/: what one runner started (its keeper and the app's
 * processes, each with its start time), so that an agent started after one that was killed
 * outright (SIGKILL, OOM; KillMode=process leaves its children running) stops the processes
 * that still hold the old socket before binding a new one. A recorded pid is signalled only
 * while /proc shows a process with that pid and that start time.
 */
interface Rec {
  pid: number;
  start: number;
}

interface FileBody {
  app: string;
  keeper?: Rec;
  processes: Rec[];
}

const SUFFIX = '.pids';
let seq = 0;

export class PidFile {
  readonly path: string;
  private keeperRec?: Rec;
  private procs = new Map<number, Rec>();

  constructor(private readonly runDir: string, private readonly app: string) {
    this.path = `${runDir}/${app}.${process.pid}-${++seq}${SUFFIX}`;
  }

  keeper(pid: number): void {
    const s = procStat(pid);
    if (s) this.keeperRec = { pid, start: s.start };
    this.write();
  }

  add(pid: number): void {
    const s = procStat(pid);
    if (s) this.procs.set(pid, { pid, start: s.start });
    this.write();
  }

  remove(pid: number): void {
    if (this.procs.delete(pid)) this.write();
  }

  /** Stops every recorded process that is still the one recorded. */
  async killAll(): Promise<void> {
    const procs = [...this.procs.values()];
    const keeper = this.keeperRec;
    this.procs.clear();
    this.keeperRec = undefined;
    await stopRecorded(procs, keeper);
    this.write();
  }

  async delete(): Promise<void> {
    await unlink(this.path).catch(() => {});
  }

  private write(): void {
    const body: FileBody = { app: this.app, ...(this.keeperRec ? { keeper: this.keeperRec } : {}), processes: [...this.procs.values()] };
    const tmp = `${this.path}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(body) + '\n', { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch {
      // Best effort: the directory may be gone while the agent stops; the socket matters more.
    }
  }
}

/** Live pids of a record: the process itself when it is the one recorded, and its group's members (php-cgi's own children). */
function liveOf(r: Rec, group: boolean): number[] {
  const s = procStat(r.pid);
  if (!s || s.start !== r.start) return [];
  if (!group || s.pgrp !== r.pid) return [r.pid];
  return [...new Set([r.pid, ...groupMembers(r.pid, r.start)])];
}

async function stopRecorded(procs: Rec[], keeper: Rec | undefined, graceMs = 3000): Promise<number> {
  const targets = (): number[] => [...procs.flatMap((r) => liveOf(r, true)), ...(keeper ? liveOf(keeper, false) : [])];
  let live = targets();
  const n = live.length;
  for (const pid of live) signalPid(pid, 'SIGTERM');
  for (const t0 = Date.now(); live.length && Date.now() - t0 < graceMs;) {
    await new Promise((r) => setTimeout(r, 50));
    live = targets();
  }
  for (const pid of live) signalPid(pid, 'SIGKILL');
  return n;
}

/**
 * At start, before any socket is bound: stops what earlier agents recorded in `runDir` and
 * removes their pid files. A file that does not parse is removed (and said so), never trusted.
 */
export async function stopLeftovers(runDir: string, log: Logger): Promise<number> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return 0;
  }
  let stopped = 0;
  for (const name of names.filter((x) => x.endsWith(SUFFIX) || x.endsWith(`${SUFFIX}.tmp`))) {
    const path = `${runDir}/${name}`;
    const body = parse(await readFile(path, 'utf8').catch(() => ''));
    if (!body) log.warn('fastcgi: unreadable pid file removed', { file: path });
    else {
      const n = await stopRecorded(body.processes, body.keeper);
      if (n) log.warn('fastcgi: stopped processes left by an earlier agent', { app: body.app, processes: n, file: path });
      stopped += n;
    }
    await unlink(path).catch(() => {});
  }
  return stopped;
}

const isRec = (r: unknown): r is Rec => typeof r === 'object' && r !== null && Number.isInteger((r as Rec).pid) && (r as Rec).pid > 1 && Number.isInteger((r as Rec).start);

function parse(text: string): FileBody | undefined {
  try {
    const b = JSON.parse(text) as FileBody;
    if (typeof b.app !== 'string' || !Array.isArray(b.processes) || !b.processes.every(isRec) || (b.keeper !== undefined && !isRec(b.keeper))) return undefined;
    return b;
  } catch {
    return undefined;
  }
}
