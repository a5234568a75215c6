import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git } from '../validate/helpers.js';
import { cli } from '../helpers/cli.js';
import { copyExample, tempDir } from './helpers.js';

/** `edgectl render …` (the built CLI, as an operator or CI runs it): exit code and stderr. */
const render = (args: string[]) => edgectl(['render', ...args]);
const edgectl = async (args: string[]) => {
  const { code, stderr } = await cli(args);
  return { code, stderr };
};

/** Every file below a directory with its bytes: what "untouched" is compared against. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[path.relative(dir, path.join(e.parentPath, e.name))] = await readFile(path.join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

/**
 * The default output (.edgectl/render) lives inside the fleet: a fleet that puts a link there
 * must not make render write or delete anywhere else (issue 10, class 2).
 */
describe('render output and symbolic links in the fleet', { timeout: 60_000 }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let victims = 0;
  const NODE = 'bj-edge-01';

  beforeAll(async () => {
    tmp = await tempDir('out-links');
  });
  afterAll(async () => tmp.cleanup());

  /** A directory of the operator's that looks like a bundle (a stale-file sweep would empty it), one per test. */
  async function makeVictim(): Promise<{ victim: string; before: Record<string, string> }> {
    const victim = path.join(tmp.dir, `victim-${victims++}`);
    await mkdir(path.join(victim, 'nginx'), { recursive: true });
    await writeFile(path.join(victim, 'precious.txt'), 'the operator\'s data\n');
    await writeFile(path.join(victim, 'manifest.json'), '{"not":"a bundle"}\n');
    await writeFile(path.join(victim, 'nginx', 'nginx.conf'), '# the operator\'s own nginx.conf\n');
    return { victim, before: await snapshot(victim) };
  }

  /** A git fleet whose second commit adds `link` -> victim (the first commit is clean). */
  async function fleetWithLink(name: string, link: string, victim: string): Promise<string> {
    const fleet = await copyExample(path.join(tmp.dir, name));
    git(fleet, 'init', '-q');
    git(fleet, 'add', '-A');
    git(fleet, 'commit', '-q', '-m', 'clean');
    await mkdir(path.dirname(path.join(fleet, link)), { recursive: true });
    await symlink(victim, path.join(fleet, link));
    git(fleet, 'add', '-A', '-f');
    git(fleet, 'commit', '-q', '-m', 'hostile');
    return fleet;
  }

  for (const link of [`.edgectl/render/${NODE}`, '.edgectl/render', '.edgectl', `.edgectl/render/${NODE}/nginx`]) {
    it(`a committed link at ${link}: validate refuses the fleet, --rev of a clean commit refuses the output; the victim is untouched`, async () => {
      const { victim, before } = await makeVictim();
      const fleet = await fleetWithLink(link.replaceAll('/', '_'), link, victim);
      const r = await render(['--fleet', fleet]);
      expect(await snapshot(victim)).toEqual(before);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/reserved-path|\.edgectl\/ /);
      expect(r.stderr).toContain('[EDGECTL_FLEET_INVALID]');
      // The clean commit validates; the working tree (where the output goes) still has the link.
      const atRev = await render(['--fleet', fleet, '--rev', 'HEAD~1']);
      expect(atRev.code).toBe(1);
      expect(atRev.stderr).toContain('[EDGECTL_OUTPUT]');
      expect(atRev.stderr).not.toMatch(/EDGECTL_INTERNAL|at .*\.js:\d+/);
      expect(await snapshot(victim)).toEqual(before);
      expect(await readdir(victim)).toEqual(['manifest.json', 'nginx', 'precious.txt']);
    });
  }

  it('a link at .edgectl in a fleet outside git (nothing committed): EDGECTL_OUTPUT naming it, victim untouched', async () => {
    const { victim, before } = await makeVictim();
    const fleet = await copyExample(path.join(tmp.dir, 'plain'));
    await symlink(victim, path.join(fleet, '.edgectl'));
    const r = await render(['--fleet', fleet]);
    expect(await snapshot(victim)).toEqual(before);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\.edgectl is a symbolic link inside the fleet.*\[EDGECTL_OUTPUT\]/s);
    expect(await snapshot(victim)).toEqual(before);
  });

  it('a link inside an earlier bundle is removed, never followed: the render succeeds and the victim is untouched (held before the fix too)', async () => {
    const { victim, before } = await makeVictim();
    const fleet = await copyExample(path.join(tmp.dir, 'inner'));
    expect((await render(['--fleet', fleet])).code).toBe(0);
    const nginxDir = path.join(fleet, '.edgectl/render', NODE, 'nginx');
    await rm(nginxDir, { recursive: true });
    await symlink(path.join(victim, 'nginx'), nginxDir);
    await symlink(path.join(victim, 'precious.txt'), path.join(fleet, '.edgectl/render', NODE, 'stale.txt'));
    const r = await render(['--fleet', fleet]);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(await snapshot(victim)).toEqual(before);
    expect(await readFile(path.join(nginxDir, 'nginx.conf'), 'utf8')).toContain('worker_processes');
  });

  it('--out holding a directory named like a node that edgectl did not write: refused, its files kept', async () => {
    const fleet = await copyExample(path.join(tmp.dir, 'shared-out'));
    const out = path.join(tmp.dir, 'shared');
    await mkdir(path.join(out, NODE), { recursive: true });
    await writeFile(path.join(out, NODE, 'notes.txt'), 'mine\n');
    const r = await render(['--fleet', fleet, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a bundle edgectl wrote.*\[EDGECTL_OUTPUT\]/s);
    expect(await readFile(path.join(out, NODE, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(await readdir(path.join(out, NODE))).toEqual(['notes.txt']);
  });

  it('plan --local .edgectl/nodes through a link of the fleet: EDGECTL_OUTPUT, the victim untouched', async () => {
    const { victim, before } = await makeVictim();
    const fleet = await copyExample(path.join(tmp.dir, 'local-nodes'));
    await symlink(victim, path.join(fleet, '.edgectl'));
    const r = await edgectl(['plan', '--fleet', fleet, '--local', path.join(fleet, '.edgectl/nodes')]);
    expect(await snapshot(victim)).toEqual(before);
    expect(await readdir(victim)).toEqual(['manifest.json', 'nginx', 'precious.txt']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to write local nodes to .*\.edgectl is a symbolic link inside the fleet.*\[EDGECTL_OUTPUT\]/s);
  });

  it("the operator's own link outside the fleet is followed (--out through a link)", async () => {
    const fleet = await copyExample(path.join(tmp.dir, 'op-link'));
    const real = path.join(tmp.dir, 'real-out');
    await mkdir(real);
    await symlink(real, path.join(tmp.dir, 'out-link'));
    expect(await render(['--fleet', fleet, '--out', path.join(tmp.dir, 'out-link')])).toEqual({ code: 0, stderr: '' });
    expect(await readFile(path.join(real, NODE, 'manifest.json'), 'utf8')).toContain('"digest"');
  });
});
