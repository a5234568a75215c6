import { spawnSync } from 'node:child_process';
import { appendFile, chmod, mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { BIN } from '../helpers/paths.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { killNginx, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * Issue 12 items 12 and 4 through the built CLI, with real nginx per node (--local): one
 * confirmation for apply, rollback and drift --fix (a "no" is a clean "nothing changed"), and a
 * fleet with uncommitted changes refused unless --allow-dirty, its release saying so.
 */
const ADDR = '127.0.2.1';
const NODES = ['e1', 'e2', 'e3'];
let PORTS: LocalPortBlock;
let dir: string;
let fleet: string;
let root: string;
let apps: TestApp[];
const local = () => ['--fleet', fleet, '--local', root, ...PORTS.flags, '--local-address', ADDR];
const current = async (n: string) => (await readlink(join(root, n, 'current')).catch(() => 'none')).replace('releases/', '');
const manifest = async (n: string) => JSON.parse(await readFile(join(root, n, 'current', 'manifest.json'), 'utf8'));
const sq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function git(...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@localhost', '-c', 'commit.gpgsign=false', ...args], { cwd: fleet, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

/** The CLI on a real terminal (script(1) gives it a pty), answering `answer` to its prompt. */
function onTerminal(args: string[], answer: string): { code: number; out: string } {
  const cmd = [process.execPath, BIN, ...args].map(sq).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: `${answer}\n`, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1', EDGECTL_DEBUG: '' } });
  return { code: r.status ?? -1, out: r.stdout.replace(/\r/g, '') };
}

async function setApp(name: string, patch: Partial<TestApp>) {
  apps = apps.map((a) => (a.name === name ? { ...a, ...patch } : a));
  await writeApps(fleet, apps);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-confirm-'));
  await chmod(dir, 0o755);
  PORTS = await localPortBlock(NODES, ADDR);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  apps = [
    { name: 'web', domain: 'www.acme.test', nodes: ['e1', 'e2'], html: '<h1>web v1</h1>\n' },
    { name: 'blog', domain: 'blog.acme.test', nodes: ['e3'], html: '<h1>blog v1</h1>\n' },
  ];
  await writeTestFleet(fleet, { nodes: NODES, apps });
  git('init', '-q', '--initial-branch=main');
  git('add', '-A');
  git('commit', '-qm', 'first');
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('one confirmation; a dirty fleet is refused (real nginx per node)', { timeout: 240_000 }, () => {
  it('apply: "n" at the prompt changes nothing and exits 0 without an error block', () => {
    const r = onTerminal(['apply', ...local()], 'n');
    expect(r.out).toMatch(/Apply to 3 node\(s\)\? \[y\/N\]/);
    expect(r.out).toContain('not confirmed: nothing was changed');
    expect(r.out).not.toMatch(/error|hint:|EDGECTL_/);
    expect(r.code).toBe(0);
  });

  it('the apply prompt lists only the nodes that would change', async () => {
    expect((await cli(['apply', ...local(), '--yes'])).code).toBe(0);
    await setApp('blog', { html: '<h1>blog v2</h1>\n' });
    git('commit', '-qam', 'blog v2');
    const before = await current('e3');
    const r = onTerminal(['apply', ...local()], 'n');
    expect(r.out).toMatch(/Apply to 1 node\(s\) \(2 other\(s\) unchanged or unreachable, not shown\)\?/);
    expect(r.out).toMatch(/^\s*e3\s/m);
    expect(r.out).not.toMatch(/^\s*e[12]\s/m);
    expect(await current('e3')).toBe(before);
    expect((await cli(['apply', ...local(), '--yes'])).code).toBe(0);
  });

  it('drift --fix asks like apply: refused off a terminal, "n" leaves the node modified (exit 2, no error), --yes fixes', async () => {
    await appendFile(join(root, 'e2', 'current', 'nginx', 'nginx.conf'), '\n# hand edit\n');
    const off = await cli(['drift', ...local(), '--fix']);
    expect(off.code).toBe(1);
    expect(off.stdout).toMatch(/e2\s+modified on node/);
    expect(off.stderr).toMatch(/drift --fix would change 1 node\(s\) and this is not a terminal: pass --yes \[EDGECTL_NOT_CONFIRMED\]/);
    const no = onTerminal(['drift', ...local(), '--fix'], 'n');
    expect(no.out).toMatch(/Fix 1 node\(s\): e2 \(modified on node\)\? \[y\/N\]/);
    expect(no.out).toContain('not confirmed: nothing was changed');
    expect(no.out).not.toMatch(/error|hint:|EDGECTL_/);
    expect(no.code).toBe(2);
    expect((await cli(['drift', ...local()])).stdout).toMatch(/e2\s+modified on node/);
    const yes = onTerminal(['drift', ...local(), '--fix'], 'y');
    expect(yes.code, yes.out).toBe(2);
    expect(yes.out).toMatch(/fix: 1 applied/);
    expect((await cli(['drift', ...local()])).code).toBe(0);
  });

  it('rollback: its result column says "rolled back", never "applied"', async () => {
    const r = await cli(['rollback', ...local(), '--node', 'e3', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\s*e3\s+rolled back\s/m);
    expect(r.stdout + r.stderr).not.toMatch(/\bapplied\b/);
    expect((await cli(['apply', ...local(), '--yes'])).code).toBe(0);
  });

  it('a dirty fleet: plan says dirty, apply refuses it, --allow-dirty applies and the release records COMMIT-dirty', async () => {
    const c1 = git('rev-parse', 'HEAD');
    await setApp('web', { html: '<h1>web v3 (not committed)</h1>\n' });
    const plan = await cli(['plan', ...local()]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`^\\s*e1\\s.*\\([0-9a-f]{7}\\) → \\w+ \\(${c1.slice(0, 7)}-dirty\\)`, 'm'));
    expect(plan.stdout).toMatch(new RegExp(`fleet dirty \\(uncommitted changes on ${c1.slice(0, 7)}\\)`));
    const before = await current('e1');
    const refused = await cli(['apply', ...local(), '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the fleet has uncommitted changes \(at commit [0-9a-f]{12}\): 3 node\(s\) would get a release that is in no commit \[EDGECTL_FLEET_DIRTY\]\nhint: Commit the changes/);
    expect(await current('e1')).toBe(before);
    expect((await cli(['drift', ...local(), '--fix', '--yes'])).stderr).toContain('EDGECTL_FLEET_DIRTY');
    const dirty = await cli(['apply', ...local(), '--yes', '--allow-dirty']);
    expect(dirty.code, dirty.stderr).toBe(0);
    expect(dirty.stdout).toMatch(/fleet dirty/);
    expect((await manifest('e1')).fleet).toEqual({ name: 't', commit: c1, dirty: true });
    expect(await readFile(join(root, 'e1', 'current', 'edgectl', 'uncommitted'), 'utf8')).toBe(`rendered from uncommitted changes on top of commit ${c1}\n`);
    // The same files, committed: a new release stamped with the commit that holds them, not the dirty one kept.
    git('commit', '-qam', 'web v3');
    const c2 = git('rev-parse', 'HEAD');
    const again = json(await cli(['plan', ...local(), '--json']));
    const e1 = again.nodes.find((n: { node: string }) => n.node === 'e1');
    expect(e1).toMatchObject({ action: 'update', reason: 'current was rendered from uncommitted changes; this release is the commit', current: { dirty: true, commit: c1 } });
    expect(e1.files).toEqual({ added: [], changed: [], removed: ['edgectl/uncommitted'] });
    expect((await cli(['apply', ...local(), '--yes'])).code).toBe(0);
    expect((await manifest('e1')).fleet).toEqual({ name: 't', commit: c2, dirty: false });
    await expect(stat(join(root, 'e1', 'current', 'edgectl', 'uncommitted'))).rejects.toThrow();
  });
});
