import { spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliSync } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { cleanTemps, exampleCopy, git, mutate, STACK_TRACE, tempDir } from './helpers.js';

// Runs the built CLI (`npm test` builds first) as a separate process, as CI and operators do.
const ANSI = /\u001b\[/;

afterAll(cleanTemps);

// Generous timeouts: on a loaded 2-core CI machine each CLI process can take seconds to start.
describe('edgectl validate (process)', { timeout: 240_000 }, () => {
  let bad: string;
  let warn: string;
  beforeAll(async () => {
    bad = await exampleCopy();
    await mutate(bad, 'apps/acme.yaml', 'replicas: 2', 'replica: 2');
    await mutate(bad, 'nodes/core.yaml', 'address: 192.0.2.10', 'address: "192.0.2.10;reboot"');
    warn = await exampleCopy();
    await mutate(warn, 'apps/initech.yaml', 'placement: { selector: { region: south }, replicas: 1 }', 'placement: { selector: { region: south, isp: satellite } }');
  });

  it('exit 0 and a one-line summary for a valid fleet; no ANSI when stdout is not a TTY', () => {
    const r = cliSync(['validate', '--fleet', 'fleet.example']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^✓ valid: 9 files, 10 nodes, 6 apps, 3 tenants; working tree at commit [0-9a-f]{12}, (clean|with uncommitted changes \(dirty\))\n$/);
    expect(r.stdout).not.toMatch(ANSI);
    // (stderr may carry oclif's warnings about other commands' modules; never ours)
    expect(r.stderr).not.toMatch(/EDGECTL_|✗|✓/);
  });

  it('exit 1, every problem with file:line:column, field, message, source line, caret and hint', () => {
    const r = cliSync(['validate', '--fleet', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(ANSI);
    // The fleet is outside the cwd: paths are absolute, so an editor can open them.
    expect(r.stdout).toContain(`${bad}/apps/acme.yaml:13:45 error spec.placement.replica: unknown field "replica" [unknown-field]\n  13 |   placement: { selector: { region: north }, replica: 2, spreadBy: site }\n     |                                             ^\n  hint: did you mean \`replicas\`?`);
    expect(r.stdout).toContain('spec.address: must be an IP address or a hostname [invalid-value]');
    expect(r.stdout).toMatch(/✗ invalid: 2 errors, 0 warnings in 9 files/);
    expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
  });

  it('colour only when forced, and NO_COLOR wins over FORCE_COLOR', () => {
    expect(cliSync(['validate', '--fleet', bad], { env: { FORCE_COLOR: '1' } }).stdout).toMatch(ANSI);
    expect(cliSync(['validate', '--fleet', bad], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } }).stdout).not.toMatch(ANSI);
  });

  it('--json: a stable document on stdout, nothing else', () => {
    const r = cliSync(['validate', '--fleet', bad, '--json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ valid: false, errors: 2, warnings: 0, strict: false, source: { fleet: bad, from: 'directory', rev: null, commit: null, dirty: false }, counts: { files: 9, documents: 20, fleets: 1, tenants: 3, nodes: 9, apps: 5 } });
    expect(j.problems[0]).toEqual({ severity: 'error', rule: 'unknown-field', file: 'apps/acme.yaml', line: 13, column: 45, path: 'spec.placement.replica', message: 'unknown field "replica"', hint: 'did you mean `replicas`?' });
    expect(cliSync(['validate', '--fleet', 'fleet.example', '--format', 'json']).code).toBe(0);
  });

  it('--format github prints workflow annotations, and is the default under GITHUB_ACTIONS=true', () => {
    for (const r of [cliSync(['validate', '--fleet', bad, '--format', 'github']), cliSync(['validate', '--fleet', bad], { env: { GITHUB_ACTIONS: 'true' } })]) {
      expect(r.code).toBe(1);
      const lines = r.stdout.trim().split('\n');
      expect(lines[1]).toMatch(/^::error file=.*nodes\/core\.yaml,line=10,col=12,title=edgectl invalid-value::spec.address: must be an IP address or a hostname$/);
      expect(lines[0]).toMatch(/^::error file=.*apps\/acme\.yaml,line=13,col=45,title=edgectl unknown-field::spec.placement.replica: unknown field "replica" \(did you mean `replicas`\?\)$/);
      expect(lines.at(-1)).toMatch(/^edgectl: fleet is invalid: 2 errors, 0 warnings/);
    }
  });

  it('warnings: shown, exit 0; with --strict they are errors (exit 1)', () => {
    const r = cliSync(['validate', '--fleet', warn]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/apps\/initech.yaml:\d+:\d+ warning spec.placement: app is placed on no node/);
    expect(r.stdout).toMatch(/✓ valid: .*; 1 warning$/m);
    const s = cliSync(['validate', '--fleet', warn, '--strict']);
    expect(s.code).toBe(1);
    expect(s.stdout).toMatch(/error spec.placement: app is placed on no node/);
    expect(s.stdout).toMatch(/✗ invalid: 0 errors, 1 warning \(--strict: warnings count as errors\)/);
    expect(cliSync(['validate', '--fleet', warn, '--strict', '--format', 'github']).stdout).toMatch(/^::error file=.*initech/m);
    expect(JSON.parse(cliSync(['validate', '--fleet', warn, '--strict', '--json']).stdout)).toMatchObject({ valid: false, strict: true, problems: [{ severity: 'error', rule: 'placement-empty' }] });
  });

  it('errors that are not about the fleet: exit 1, a coded message on stderr, no stack trace', async () => {
    const plain = await tempDir('plain');
    const cases: [string[], RegExp][] = [
      [['validate', '--fleet', '/nonexistent/fleet'], /fleet directory \/nonexistent\/fleet does not exist \[EDGECTL_FLEET_NOT_FOUND\]/],
      [['validate', '--fleet', path.join(EXAMPLE, 'fleet.yaml')], /is not a directory \[EDGECTL_FLEET_NOT_FOUND\]/],
      [['validate', '--fleet', 'fleet.example', '--rev', 'no-such-branch'], /revision "no-such-branch" is not a commit .* \[EDGECTL_GIT\]/],
      [['validate', '--fleet', 'fleet.example', '--rev', '--output=/tmp/x'], /EDGECTL_GIT|EDGECTL_USAGE/],
      [['validate', '--fleet', plain, '--rev', 'HEAD'], /not a git repository.*\[EDGECTL_GIT\]/],
      [['validate', '--format', 'xml'], /\[EDGECTL_USAGE\]/],
      [['validate', '--bogus'], /\[EDGECTL_USAGE\]/],
    ];
    for (const [args, msg] of cases) {
      const r = cliSync(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
    }
  });
});

describe('--rev and the working tree of a git repo', { timeout: 240_000 }, () => {
  let repo: string;
  let first: string;
  beforeAll(async () => {
    repo = await tempDir('git');
    await cp(EXAMPLE, path.join(repo, 'fleet'), { recursive: true });
    await writeFile(path.join(repo, 'README.md'), 'a repo with a fleet in a subdirectory\n');
    git(repo, 'init', '-q', '--initial-branch=main');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'good fleet');
    first = git(repo, 'rev-parse', 'HEAD');
    await mutate(path.join(repo, 'fleet'), 'nodes/core.yaml', 'role: core', 'role: cor');
    git(repo, 'commit', '-q', '-am', 'break the core node');
  });

  it('reads a past commit without a checkout, and names it', async () => {
    const r = cliSync(['validate', '--fleet', path.join(repo, 'fleet'), '--rev', 'HEAD~1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`✓ valid: 9 files, 10 nodes, 6 apps, 3 tenants; revision HEAD~1 (commit ${first.slice(0, 12)})`);
    // The working tree was not touched.
    expect(await readFile(path.join(repo, 'fleet/nodes/core.yaml'), 'utf8')).toContain('role: cor\n');
    const j = JSON.parse(cliSync(['validate', '--fleet', path.join(repo, 'fleet'), '--rev', first, '--json']).stdout);
    expect(j.source).toMatchObject({ from: 'rev', rev: first, commit: first, dirty: false });
  });

  it('the broken commit is invalid at --rev HEAD, with the file and line inside the fleet', () => {
    const r = cliSync(['validate', '--fleet', 'fleet', '--rev', 'HEAD', '--json'], { cwd: repo });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toMatchObject([{ rule: 'invalid-value', file: 'nodes/core.yaml', line: 9, path: 'spec.role', hint: 'did you mean `core`?' }]);
  });

  it('the working tree: the commit, and clean or dirty', async () => {
    let r = cliSync(['validate', '--fleet', 'fleet'], { cwd: repo });
    const head = git(repo, 'rev-parse', 'HEAD');
    expect(r.stdout).toContain(`working tree at commit ${head.slice(0, 12)}, clean`);
    await mutate(path.join(repo, 'fleet'), 'nodes/core.yaml', 'role: cor', 'role: core');
    r = cliSync(['validate', '--fleet', 'fleet'], { cwd: repo });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`working tree at commit ${head.slice(0, 12)}, with uncommitted changes (dirty)`);
    expect(JSON.parse(cliSync(['validate', '--fleet', 'fleet', '--json'], { cwd: repo }).stdout).source).toMatchObject({ from: 'worktree', commit: head, dirty: true });
    // A change outside the fleet directory does not make the fleet dirty.
    git(repo, 'commit', '-q', '-am', 'fix');
    await writeFile(path.join(repo, 'README.md'), 'changed\n');
    expect(cliSync(['validate', '--fleet', 'fleet'], { cwd: repo }).stdout).toMatch(/, clean$/m);
  });

  it('a repo without commits', async () => {
    const d = await tempDir('nocommit');
    await cp(EXAMPLE, d, { recursive: true });
    git(d, 'init', '-q');
    expect(cliSync(['validate', '--fleet', d]).stdout).toContain('working tree (no commits yet)');
  });
});

describe('edgectl init', { timeout: 240_000 }, () => {
  it('creates a git repo from the packaged example that validate accepts, from any cwd', async () => {
    const parent = await tempDir('init');
    const r = cliSync(['init', 'my-fleet'], { cwd: parent });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ created a fleet repo in .*my-fleet \(\d+ files, commit [0-9a-f]{12}\)/);
    expect(r.stdout).toMatch(/Next steps:\n {2}cd my-fleet\n {2}\S.* validate/);
    const dir = path.join(parent, 'my-fleet');
    expect(git(dir, 'status', '--porcelain')).toBe('');
    expect(git(dir, 'log', '--format=%s')).toBe('Start the fleet from the edgectl example');
    const v = cliSync(['validate'], { cwd: dir });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/✓ valid: 9 files, 10 nodes, 6 apps, 3 tenants; working tree at commit [0-9a-f]{12}, clean/);
  });

  it('the new fleet ignores what edgectl writes in it, its README is its own, and the next steps run as printed', async () => {
    const parent = await tempDir('init-next');
    const r = cliSync(['init', 'f'], { cwd: parent });
    expect(r.code, r.stderr).toBe(0);
    const dir = path.join(parent, 'f');
    expect(git(dir, 'ls-files', '.gitignore')).toBe('.gitignore');
    const readme = await readFile(path.join(dir, 'README.md'), 'utf8');
    expect(readme).not.toContain('fleet.example');
    expect(readme).toContain('edgectl validate');
    // The printed command, not an `edgectl` that is not on PATH: run the render line through a shell, as the operator would.
    const line = r.stdout.split('\n').find((l) => / render\s+#/.test(l))!.replace(/#.*$/, '').trim();
    expect(line).not.toMatch(/^edgectl /);
    const sh = spawnSync('sh', ['-c', line], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: '/usr/bin:/bin' } });
    expect(sh.status, sh.stderr).toBe(0);
    expect(await readdir(path.join(dir, '.edgectl/render'))).toContain('bj-edge-01');
    // Rendering (and --local nodes) leave the fleet clean: a render makes no commit dirty.
    expect(git(dir, 'status', '--porcelain')).toBe('');
    expect(cliSync(['validate'], { cwd: dir }).stdout).toMatch(/, clean$/m);
  });

  it('works without a configured git identity (fallback author)', async () => {
    const parent = await tempDir('init-noid');
    const home = await tempDir('home');
    const r = cliSync(['init', 'f', '--json'], { cwd: parent, env: { HOME: home, XDG_CONFIG_HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: path.join(home, 'none') } });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ dir: path.join(parent, 'f'), fallbackAuthor: true, commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(j.files).toContain('fleet.yaml');
    expect(git(path.join(parent, 'f'), 'log', '--format=%an <%ae>')).toBe('edgectl init <edgectl@localhost>');
  });

  it('without git on PATH: init keeps the files and says how to finish; validate reads the directory; --rev is a coded error', async () => {
    const parent = await tempDir('init-nogit');
    const env = { PATH: path.join(parent, 'no-bin') };
    const r = cliSync(['init', 'f'], { cwd: parent, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the fleet files are in f, but git failed: .*ENOENT.* \[EDGECTL_GIT\]\nhint: Check that git is installed/);
    expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
    expect(await readFile(path.join(parent, 'f/fleet.yaml'), 'utf8')).toContain('kind: Fleet');
    const v = cliSync(['validate', '--fleet', 'f'], { cwd: parent, env });
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/✓ valid: 9 files, .*; a directory outside git$/m);
    const rev = cliSync(['validate', '--fleet', 'f', '--rev', 'HEAD'], { cwd: parent, env });
    expect(rev.code).toBe(1);
    expect(rev.stderr).toMatch(/cannot run git: .*ENOENT \[EDGECTL_GIT\]/);
    expect(rev.stdout + rev.stderr).not.toMatch(STACK_TRACE);
  });

  it('refuses a directory that is not empty, and changes nothing in it', async () => {
    const dir = await tempDir('init-full');
    await writeFile(path.join(dir, 'keep.txt'), 'mine\n');
    const r = cliSync(['init', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not empty \[EDGECTL_DIR_NOT_EMPTY\]/);
    expect(await readFile(path.join(dir, 'keep.txt'), 'utf8')).toBe('mine\n');
    await mkdir(path.join(dir, 'sub'));
    expect(cliSync(['init', path.join(dir, 'keep.txt')]).stderr).toMatch(/exists and is not a directory/);
  });
});
