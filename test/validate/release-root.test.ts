import { afterAll, describe, expect, it } from 'vitest';
import { cleanTemps, exampleCopy, lineOf, mutate, validateDir } from './helpers.js';

afterAll(cleanTemps);

/**
 * apply creates, swaps and deletes directories under a node's root as root: only a directory
 * below a data prefix passes, whatever the spelling (issue 10, class 7).
 */
describe('release root', () => {
  const REFUSED = [
    '/', '/.', '/etc/.', '/./etc', '//etc', '/etc//', '/etc/', '/usr/bin', '/etc/ssh', '/root/.ssh', '/etc/cron.d',
    '/proc/self/root', '/proc/self/root/etc', '/proc/1/cwd', '/sys/kernel', '/dev/shm/x', '/boot/efi', '/home/ops', '/tmp/edge',
    '/srv', '/srv/', '/var/lib', '/var/lib/', '/data', '/var', '/var/log/edgectl', '/srvx/edge', '/var/libx/edge',
    '/srv/../etc', '/srv/./edge', '/srv//edge', '/var/lib/edgectl/..', '/srv/.', 'srv/edge', '',
    // Other programs' state and other apps' releases below a data prefix (the root must be edgectl's own by name).
    '/var/lib/dpkg', '/var/lib/apt/lists', '/var/lib/systemd', '/var/lib/docker', '/srv/www/app', '/srv/edge', '/var/lib/edgectlx', '/srv/.edgectl',
  ];
  const ACCEPTED = ['/var/lib/edgectl', '/srv/edgectl-edge', '/data/edgectl/', '/var/opt/edgectl', '/srv/edgectl/releases-a', '/srv/ops/edgectl.a', '/data/edgectl_2/x'];

  it('each refused spelling is an error at spec.defaults.root with the line of the root', async () => {
    const dir = await exampleCopy();
    let text = '';
    for (const [i, root] of REFUSED.entries()) {
      const find = i === 0 ? 'root: /var/lib/edgectl' : `root: ${JSON.stringify(REFUSED[i - 1])}`;
      text = await mutate(dir, 'fleet.yaml', find, `root: ${JSON.stringify(root)}`);
      const r = await validateDir(dir);
      const hits = r.problems.filter((p) => p.path === 'spec.defaults.root');
      expect(hits, `${root}: ${JSON.stringify(r.problems)}`).toEqual([expect.objectContaining({ severity: 'error', rule: 'invalid-value', file: 'fleet.yaml', line: lineOf(text, 'root: ') })]);
      expect(hits[0].message).toMatch(/^must be (a directory below \/var\/lib\/|a directory of edgectl's own|written canonically|an absolute path)/);
    }
  });

  it('a directory below /var/lib/, /var/opt/, /srv/ or /data/ is accepted, on a node too', async () => {
    const dir = await exampleCopy();
    let prev = 'root: /var/lib/edgectl';
    for (const root of ACCEPTED) {
      await mutate(dir, 'fleet.yaml', prev, `root: ${root}`);
      prev = `root: ${root}`;
      expect((await validateDir(dir)).problems, root).toEqual([]);
    }
    const text = await mutate(dir, 'nodes/north.yaml', '  address: 203.0.113.11\n', '  address: 203.0.113.11\n  root: /etc/cron.d\n');
    const r = await validateDir(dir);
    expect(r.problems).toEqual([expect.objectContaining({ file: 'nodes/north.yaml', path: 'spec.root', line: lineOf(text, 'root: /etc/cron.d'), message: expect.stringMatching(/below \/var\/lib\/, \/var\/opt\/, \/srv\/, \/data\//) })]);
  });
});
