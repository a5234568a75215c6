import { readFile, readdir } from 'node:fs/promises';

/**
 * nginx's master from its pid file, if it is alive and is nginx: a stale pid file may name a
 * reused pid or a zombie, and neither must be signalled or reported as up (the same check as the
 * node scripts' live_nginx, src/lib/release/remote.ts).
 */
export async function nginxMaster(pidFile: string): Promise<number | null> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const t = text.trim();
  if (!/^[1-9]\d{0,9}$/.test(t)) return null;
  const pid = Number(t);
  const stat = await procStat(pid);
  return stat && stat.comm.startsWith('nginx') && stat.state !== 'Z' && stat.state !== 'X' ? pid : null;
}

/**
 * The master's current workers: its nginx children titled "nginx: worker process" (not the cache
 * manager or loader, nor old workers finishing after a reload, "... is shutting down").
 */
export async function nginxWorkers(master: number): Promise<number> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  let n = 0;
  await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map(async (e) => {
    const s = await procStat(Number(e));
    if (!s || s.ppid !== master || !s.comm.startsWith('nginx') || s.state === 'Z') return;
    const title = await readFile(`/proc/${e}/cmdline`, 'latin1').catch(() => '');
    if (/^nginx: worker process\0*$/.test(title)) n++;
  }));
  return n;
}

/** /proc/PID/stat: "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'. */
async function procStat(pid: number): Promise<{ comm: string; state: string; ppid: number } | undefined> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const open = s.indexOf('(');
  const close = s.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = s.slice(close + 2).split(' ');
  return { comm: s.slice(open + 1, close), state: rest[0], ppid: Number(rest[1]) };
}
