import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_DATA_DIR } from './data-dir.js';
import { execa } from 'execa';

/** Process, slot and wait utilities of the test lab (hosts.ts). */
const SLOTS = 32;
export const SLOT_DIR = '/tmp/edgectl-lab-slots';

/** One lab slot per process-wide lock file; a slot whose owner died is cleaned up (its namespaces and what runs in them) and reused. */
export async function takeSlot(): Promise<number> {
  await mkdir(SLOT_DIR, { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    for (let s = 0; s < SLOTS; s++) {
      const f = join(SLOT_DIR, String(s));
      try {
        await writeFile(f, String(process.pid), { flag: 'wx' });
        return s;
      } catch {
        let pid = 0;
        try {
          pid = Number(readFileSync(f, 'utf8').trim() || 0);
        } catch {
          /* released meanwhile */
        }
        if (pid && !alive(pid)) {
          await cleanSlot(s);
          await unlink(f).catch(() => {});
          s--; // and take it
        }
      }
    }
  }
  throw new Error('lab: no free slot (32 labs running?)');
}

export async function cleanSlot(s: number): Promise<void> {
  const list = await execa('ip', ['netns', 'list'], { reject: false });
  for (const line of String(list.stdout).split('\n')) {
    const ns = line.split(' ')[0];
    if (!ns.startsWith(`ec-s${s}-`)) continue;
    // Left by a lab whose test process died: its sshd, tunnels and daemons still run in there.
    const pids = await execa('ip', ['netns', 'pids', ns], { reject: false });
    for (const pid of String(pids.stdout).split('\n').filter(Boolean)) signal(Number(pid), 'SIGKILL');
    await execa('ip', ['netns', 'del', ns], { reject: false });
  }
  // Its root-namespace sshds (and daemons) name its directory, and would hold the slot's ports.
  const mark = join(TEST_DATA_DIR, `ec-lab${s}-`);
  const procs = listProcs();
  const doomed = withDescendants(procs, procs.filter((p) => p.pid !== process.pid && readCmdline(p.pid).includes(mark)).map((p) => p.pid));
  for (const pid of doomed) signal(pid, 'SIGKILL');
}

/** The given pids and every process below them in `procs` (children, grandchildren…). */
export function withDescendants(procs: readonly { pid: number; ppid: number }[], roots: readonly number[]): Set<number> {
  const tree = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (tree.has(p.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return tree;
}

export function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function listProcs(): { pid: number; ppid: number }[] {
  const out: { pid: number; ppid: number }[] = [];
  for (const d of readdirProc()) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(d), ppid: Number(after[1]) });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export function readdirProc(): string[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
}

export async function run(argv: string[]): Promise<string> {
  const r = await execa(argv[0], argv.slice(1), { reject: false });
  if (r.exitCode !== 0) throw new Error(`lab: \`${argv.join(' ')}\` failed: ${r.stderr || r.stdout}`);
  return String(r.stdout);
}

export async function waitFor(check: () => Promise<boolean>, what: string, log: string, failed?: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  const tail = () => {
    try {
      return readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    if (failed?.()) throw new Error(`lab: process exited while waiting for ${what}; ${log}:\n${tail()}`);
    await sleep(25);
  }
  throw new Error(`lab: timed out waiting for ${what}; ${log}:\n${tail()}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
