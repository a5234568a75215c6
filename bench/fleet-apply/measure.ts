import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { descendants, listProcs, treeRssSampler } from './procs.js';

/** One measured process run: wall clock, exit status, peak RSS, output (kept in files too). */
export interface Measured {
  label: string;
  argv: string[];
  exitCode: number | null;
  wallS: number;
  /** ru_maxrss of the command (the largest single process), from /usr/bin/time -v. */
  maxRssMb: number;
  /** User + system CPU seconds of the command and the children it waited for (local side only). */
  cpuS: number;
  /** Peak of the summed RSS of the command's whole process tree, sampled every 500 ms. */
  treeRssMb: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  /** Where to keep the full stdout/stderr (path prefix). */
  logPrefix: string;
  onSpawn?: (pid: number) => void;
}

/** Runs argv under `/usr/bin/time -v` and measures it. Never throws for a non-zero exit. */
export async function measure(label: string, argv: string[], opts: MeasureOptions): Promise<Measured> {
  const timeFile = `${opts.logPrefix}.time`;
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-v', '-o', timeFile, ...argv], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid) opts.onSpawn?.(child.pid);
  const sampler = child.pid ? treeRssSampler(child.pid) : undefined;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // time(1) forwards no signal: end the measured command's whole process tree by pid.
    const tree = child.pid ? descendants(listProcs(), new Set([child.pid])) : new Set<number>();
    for (const pid of [...tree].reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }, opts.timeoutMs);
  // Wait for exit, not 'close': ssh ControlPersist masters that Ansible leaves behind inherit
  // its stdout and would hold the pipe (and this wait) open long after ansible-playbook is gone.
  // The clock stops at exit; the 500 ms after it only let the last output arrive (it was counted
  // in wallS until 2026-12-02, adding 0.5 s to every step).
  let exitedAt = 0;
  const exitCode = await new Promise<number | null>((resolve) => {
    child.on('exit', (code) => ((exitedAt = performance.now()), setTimeout(() => resolve(code), 500)));
    child.on('error', () => resolve(null));
  });
  child.stdout.destroy();
  child.stderr.destroy();
  const wallS = ((exitedAt || performance.now()) - t0) / 1000;
  clearTimeout(timer);
  const treeRssMb = sampler?.stop() ?? 0;
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  await writeFile(`${opts.logPrefix}.stdout`, stdout);
  await writeFile(`${opts.logPrefix}.stderr`, stderr);
  let maxRssMb = 0;
  let cpuS = 0;
  let status = exitCode;
  try {
    const t = await readFile(timeFile, 'utf8');
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(t);
    if (m) maxRssMb = Number(m[1]) / 1024;
    cpuS = Number(/User time \(seconds\): ([\d.]+)/.exec(t)?.[1] ?? 0) + Number(/System time \(seconds\): ([\d.]+)/.exec(t)?.[1] ?? 0);
    // time(1) exits with the command's status, but says so explicitly too.
    const s = /Exit status: (\d+)/.exec(t);
    if (s && status !== null) status = Number(s[1]);
  } catch {
    // time(1) did not get to write (killed)
  }
  return { label, argv, exitCode: status, wallS, cpuS, maxRssMb, treeRssMb, stdout, stderr, timedOut };
}
