import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, exampleCopy, git, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

const SECRET = 'SECRET-7f3a9c-of-the-operator';

/** Every byte render wrote, as one string: the secret must not be anywhere in it. */
async function allOutput(dir: string): Promise<string> {
  let text = '';
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (e.isFile()) text += await readFile(path.join(e.parentPath, e.name), 'utf8');
  }
  return text;
}

/**
 * Working-tree reads follow no symbolic link and open no FIFO or device (issue 10, class 4):
 * each path edgectl reads besides the documents, with a real link to a file outside the fleet.
 * validate names the file (rule fleet-link); render fails and writes nothing holding the secret;
 * the source reader itself refuses, so the rule holds even where validate is not asked.
 */
describe('symbolic links and special files where edgectl reads', { timeout: 120_000 }, () => {
  let outside: string;
  let secretFile: string;
  beforeAll(async () => {
    outside = await tempDir('outside');
    secretFile = path.join(outside, 'secret');
    await writeFile(secretFile, `${SECRET}\n`);
    // An operator's directory shaped like a fleet's templates/.
    await mkdir(path.join(outside, 'tpl/nginx'), { recursive: true });
    await writeFile(path.join(outside, 'tpl/nginx/mime.types'), `types { text/plain ${SECRET.toLowerCase()}; }\n`);
  });

  const CASES: { name: string; link: string; target: () => string; rule: { file: string; path: string }; read: (s: Awaited<ReturnType<typeof readFleetSource>>) => Promise<unknown> }[] = [
    { name: 'a static site file', link: 'sites/acme-www/secret.html', target: () => secretFile, rule: { file: 'apps/acme.yaml', path: 'spec.static.path' }, read: (s) => s.listExtra('sites/acme-www') },
    { name: 'a static site directory', link: 'sites/acme-www/assets', target: () => outside, rule: { file: 'apps/acme.yaml', path: 'spec.static.path' }, read: (s) => s.listExtra('sites/acme-www') },
    { name: 'the whole static.path', link: 'sites/acme-www', target: () => outside, rule: { file: 'apps/acme.yaml', path: 'spec.static.path' }, read: (s) => s.listExtra('sites/acme-www') },
    { name: 'a php file', link: 'sites/initech-portal/index.php', target: () => secretFile, rule: { file: 'apps/initech.yaml', path: 'spec.fastcgi.path' }, read: (s) => s.readExtra('sites/initech-portal/index.php') },
    { name: 'mime.types', link: 'templates/nginx/mime.types', target: () => secretFile, rule: { file: 'templates/nginx/mime.types', path: '' }, read: (s) => s.readExtra('templates/nginx/mime.types') },
    { name: 'a template override', link: 'templates/nginx/app-static.conf.ejs', target: () => secretFile, rule: { file: 'templates/nginx/app-static.conf.ejs', path: '' }, read: (s) => s.readExtra('templates/nginx/app-static.conf.ejs') },
    { name: 'the templates directory', link: 'templates', target: () => path.join(outside, 'tpl'), rule: { file: 'templates', path: '' }, read: (s) => s.readExtra('templates/nginx/mime.types') },
  ];

  for (const c of CASES) {
    it(`${c.name} (${c.link} -> outside): validate, render and the reader refuse it; the secret is in no bundle`, async () => {
      const dir = await exampleCopy();
      await rm(path.join(dir, c.link), { recursive: true, force: true });
      await mkdir(path.dirname(path.join(dir, c.link)), { recursive: true });
      await symlink(c.target(), path.join(dir, c.link));
      if (c.link === 'sites/acme-www/assets') await writeFile(path.join(outside, 'app.css'), SECRET);

      const out = path.join(dir, 'out');
      const r = cliSync(['render', '--fleet', dir, '--out', out]);
      expect((await allOutput(out)).toUpperCase()).not.toContain(SECRET.toUpperCase());
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('[EDGECTL_FLEET_INVALID]');

      const v = await validateDir(dir);
      expect(v.problems.filter((p) => p.rule === 'fleet-link')).toEqual([expect.objectContaining({ severity: 'error', ...c.rule, message: expect.stringContaining(c.link) })]);
      await expect(c.read(await readFleetSource(dir))).rejects.toMatchObject({ code: 'EDGECTL_FLEET_INVALID', message: expect.stringMatching(/is a symbolic link: edgectl follows no symbolic link/) });
    });
  }

  it('a link committed in git is refused at --rev too (git never follows it; the revision reader says so)', async () => {
    const dir = await exampleCopy();
    await symlink(secretFile, path.join(dir, 'sites/acme-www/secret.html'));
    git(dir, 'init', '-q');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'hostile');
    const atRev = await readFleetSource(dir, 'HEAD');
    expect(atRev.links).toEqual(['sites/acme-www/secret.html']);
    await expect(atRev.listExtra('sites/acme-www')).rejects.toMatchObject({ code: 'EDGECTL_FLEET_INVALID' });
    expect((await validateDir(dir, 'HEAD')).problems.map((p) => p.rule)).toEqual(['fleet-link']);
  });

  it('a FIFO in a static site neither blocks nor is read: a coded error naming it, at once', async () => {
    const dir = await exampleCopy();
    const mk = spawnSync('mkfifo', [path.join(dir, 'sites/acme-www/pipe.html')]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    await expect((await readFleetSource(dir)).listExtra('sites/acme-www')).rejects.toMatchObject({ message: expect.stringContaining('sites/acme-www/pipe.html is a FIFO') });
    // The CLI with a timeout: a regression fails instead of hanging the run.
    const r = cliSync(['render', '--fleet', dir, '--out', path.join(dir, 'out')], { timeout: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pipe\.html/);
  });

  it('a link elsewhere in the fleet (not a path edgectl reads) is left alone', async () => {
    const dir = await exampleCopy();
    await symlink(secretFile, path.join(dir, 'NOTES.md'));
    expect((await validateDir(dir)).problems).toEqual([]);
  });
});
