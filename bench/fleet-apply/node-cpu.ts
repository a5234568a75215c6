import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Node-side CPU of a run: the farm's sshds go into a CPU-accounting cgroup of their own, so
 * everything they fork for a tool (session processes, shells, coreutils, tar, nginx -t, the
 * nginx masters they start) is counted there, exited processes included. Read before and after
 * a step: the difference is what that step cost the nodes, whichever tool ran it.
 * cgroup v1's cpuacct (this machine) or v2's cpu.stat; undefined where neither can be made.
 */
export interface NodeCpu {
  /** Nanoseconds of CPU the group has used so far. */
  usageNs(): Promise<number>;
  close(): Promise<void>;
}

const V1 = '/sys/fs/cgroup/cpuacct';
const V2 = '/sys/fs/cgroup';

export async function nodeCpuGroup(name: string, pids: number[]): Promise<NodeCpu | undefined> {
  const v2 = existsSync(path.join(V2, 'cgroup.controllers')) && !existsSync(V1);
  const base = v2 ? V2 : V1;
  if (!existsSync(path.join(base, 'cgroup.procs'))) return undefined;
  const dir = path.join(base, name);
  try {
    await mkdir(dir);
    for (const pid of pids) await writeFile(path.join(dir, 'cgroup.procs'), `${pid}\n`);
  } catch {
    await rmdir(dir).catch(() => {});
    return undefined;
  }
  return {
    async usageNs() {
      if (!v2) return Number((await readFile(path.join(dir, 'cpuacct.usage'), 'utf8')).trim());
      const m = /^usage_usec (\d+)$/m.exec(await readFile(path.join(dir, 'cpu.stat'), 'utf8'));
      return m ? Number(m[1]) * 1000 : NaN;
    },
    async close() {
      // Whatever still runs in it (the run's processes are ended before) goes back to the root group.
      const left = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
      for (const pid of left) await writeFile(path.join(base, 'cgroup.procs'), `${pid}\n`).catch(() => {});
      await rmdir(dir).catch(() => {});
    },
  };
}
