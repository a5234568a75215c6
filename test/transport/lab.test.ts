import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createLab } from '../helpers/hosts.js';
import { TEST_DATA_DIR } from '../helpers/data-dir.js';
import { SLOT_DIR } from '../helpers/lab-util.js';

/** The lab itself: close() leaves no process, namespace or slot behind, daemons included. */
it('close() kills sshd, tunnels and daemons started inside the hosts, and deletes the namespaces', async () => {
  const lab = await createLab();
  const pids: number[] = [];
  let ns: string[] = [];
  try {
    const core = await lab.addHost('core-1');
    const relay = await lab.addHost('relay-1', { relay: true });
    const edge = await lab.addHost('edge-1', { behind: relay });
    await lab.addHost('edge-2', { behind: relay, reverseTunnel: true });
    // lab.http reaches a server on an edge host from its relay's namespace (the test process cannot).
    lab.spawnIn(edge, [process.execPath, '-e', "require('http').createServer((q, s) => s.end('hi ' + q.headers.host)).listen(8080, process.argv[1])", edge.address]);
    await expect.poll(async () => (await lab.http(edge, { port: 8080, path: '/', host: 'app.example' })).body, { timeout: 10_000 }).toBe('hi app.example');
    expect((await lab.http(edge, { port: 8081 })).status).toBe(0);
    // Daemons that detach from whatever started them, as nginx does.
    for (const h of [core, edge]) {
      const r = await lab.execIn(h.netns ? h : undefined, ['sh', '-c', `setsid sh -c 'sleep 600; :' ${h.root}/daemon >/dev/null 2>&1 < /dev/null & echo $!`]);
      pids.push(Number(r.stdout.trim()));
    }
    pids.push(...lab.hosts.map((h) => h.sshd!.pid!));
    ns = lab.hosts.filter((h) => h.netns).map((h) => h.netns!);
    expect(pids.every((p) => alive(p))).toBe(true);
  } finally {
    await lab.close();
  }
  await expect.poll(() => pids.filter(alive), { timeout: 3000 }).toEqual([]);
  const left = readFileSync('/proc/self/mounts', 'utf8');
  for (const n of ns) expect(left).not.toContain(`/run/netns/${n} `);
});

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

it("a lab whose test process died is cleaned up when its slot is reclaimed: processes, namespaces, ports", async () => {
  await mkdir(SLOT_DIR, { recursive: true });
  // A pid that is surely dead: a child that has exited.
  const dead = spawn('true');
  await new Promise((r) => dead.once('exit', r));
  let slot = 0;
  for (; slot < 32; slot++) {
    try {
      await writeFile(`${SLOT_DIR}/${slot}`, String(dead.pid), { flag: 'wx' });
      break;
    } catch {
      /* taken */
    }
  }
  const ns = `ec-s${slot}-n0`;
  execFileSync('ip', ['netns', 'add', ns]);
  const inNs = spawn('ip', ['netns', 'exec', ns, 'sleep', '600'], { stdio: 'ignore', detached: true });
  await mkdir(TEST_DATA_DIR, { recursive: true });
  const fakeDir = await mkdtemp(join(TEST_DATA_DIR, `ec-lab${slot}-`));
  const inRoot = spawn('sh', ['-c', 'sleep 600; :', `${fakeDir}/sshd_config`], { stdio: 'ignore', detached: true });
  await new Promise((r) => setTimeout(r, 200));
  expect([alive(inNs.pid!), alive(inRoot.pid!)]).toEqual([true, true]);
  const child = Number(execFileSync('pgrep', ['-P', String(inRoot.pid)]).toString().trim());
  expect(alive(child)).toBe(true);
  const lab = await createLab();
  try {
    await expect.poll(() => [alive(inNs.pid!), alive(inRoot.pid!), alive(child)], { timeout: 5000 }).toEqual([false, false, false]);
    await expect.poll(() => readFileSync('/proc/self/mounts', 'utf8').includes(`/run/netns/${ns} `), { timeout: 5000 }).toBe(false);
  } finally {
    await lab.close();
    await rm(fakeDir, { recursive: true, force: true });
  }
});
