import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { createLab } from '../helpers/hosts.js';

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
