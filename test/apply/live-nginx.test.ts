import { execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIVE_NGINX_FN } from '../../src/lib/release/remote.js';

/**
 * Which pid file names a running nginx: the check the node's state, reload and stop scripts share.
 * A process called nginx that was killed but not reaped yet (a zombie) must not count: a reload
 * would "succeed" against it and nothing would be started.
 */
const live = (pidFile: string) => {
  try {
    return execFileSync('sh', ['-c', `${LIVE_NGINX_FN}\nlive_nginx "$1"`, 'sh', pidFile], { encoding: 'utf8' }).trim();
  } catch {
    return 'no';
  }
};

describe('live_nginx', () => {
  let dir = '';
  const procs: number[] = [];
  afterAll(async () => {
    for (const p of procs) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a live process named nginx counts; a zombie of it, a reused pid, garbage or no file do not', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ec-live-nginx-'));
    const fake = join(dir, 'nginx');
    await copyFile('/bin/sleep', fake);
    execFileSync('chmod', ['755', fake]);
    // sh starts "nginx", writes its pid, then becomes a sleep that never reaps it.
    const parent = spawn('sh', ['-c', `"${fake}" 300 & echo $! > "${dir}/nginx.pid"; exec sleep 300`], { stdio: 'ignore' });
    procs.push(parent.pid!);
    let pid = '';
    for (let i = 0; i < 50 && !pid; i++) {
      pid = (await readFile(join(dir, 'nginx.pid'), 'utf8').catch(() => '')).trim();
      if (!pid) await new Promise((r) => setTimeout(r, 50));
    }
    procs.push(Number(pid));
    expect(live(join(dir, 'nginx.pid'))).toBe(pid);

    process.kill(Number(pid), 'SIGKILL');
    let state = '';
    for (let i = 0; i < 50 && !state.startsWith('Z'); i++) {
      state = (await readFile(`/proc/${pid}/status`, 'utf8')).match(/^State:\s*(.*)$/m)?.[1] ?? '';
      if (!state.startsWith('Z')) await new Promise((r) => setTimeout(r, 20));
    }
    expect(state).toMatch(/^Z/);
    expect(await readFile(`/proc/${pid}/comm`, 'utf8')).toMatch(/^nginx/);
    expect(live(join(dir, 'nginx.pid'))).toBe('no');

    await writeFile(join(dir, 'other.pid'), `${parent.pid}\n`); // alive, but it is sleep
    expect(live(join(dir, 'other.pid'))).toBe('no');
    await writeFile(join(dir, 'junk.pid'), '$(reboot)\n');
    expect(live(join(dir, 'junk.pid'))).toBe('no');
    expect(live(join(dir, 'missing.pid'))).toBe('no');
    // The caller's variables are its own: the one-shot script keeps its staging dir in s and c.
    const kept = execFileSync('sh', ['-c', `${LIVE_NGINX_FN}\np=P c=C s=S k=K v=V; live_nginx "$1" >/dev/null; echo "$p$c$s$k$v"`, 'sh', join(dir, 'other.pid')], { encoding: 'utf8' }).trim();
    expect(kept).toBe('PCSKV');
  });
});
