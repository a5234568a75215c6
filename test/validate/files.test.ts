import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { fastDocuments } from '../../src/lib/fleet/fast-yaml.js';
import { MAX_FILE_BYTES, readFleetRev } from '../../src/lib/fleet/source.js';
import { validateText } from '../../src/lib/output/validate-report.js';
import { MAX_FILE_PROBLEMS } from '../../src/lib/fleet/validate.js';
import { spawnSync } from 'node:child_process';
import { cliSync } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { cleanTemps, exampleCopy, git, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

/** A fleet.example copy plus one extra file, validated; the problems reported for that file. */
async function withFile(name: string, content: string | Buffer) {
  const dir = await exampleCopy();
  await writeFile(path.join(dir, name), content);
  const r = await validateDir(dir);
  return { r, mine: r.problems.filter((p) => p.file === name) };
}

describe('file-level rules', { timeout: 120_000 }, () => {
  it('not-utf8: names the line of the first bad byte', async () => {
    const { mine } = await withFile('bad.yaml', Buffer.concat([Buffer.from('apiVersion: edgectl/v1\nkind: Node\n# caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    expect(mine).toMatchObject([{ rule: 'not-utf8', line: 3, message: 'file is not valid UTF-8' }]);
  });

  it('file-too-large: a file over 4 MiB is refused before parsing', async () => {
    const { mine } = await withFile('big.yaml', `# ${'x'.repeat(4 * 1024 * 1024 + 10)}\n`);
    expect(mine).toMatchObject([{ rule: 'file-too-large', line: 1, message: 'file is larger than 4 MiB' }]);
  });

  it('file-too-large at --rev: refused the same way, the blob never read whole', async () => {
    const dir = await exampleCopy();
    await writeFile(path.join(dir, 'big.yaml'), `# ${'x'.repeat(64 * 1024 * 1024)}\n`);
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'big');
    const r = cliSync(['validate', '--fleet', dir, '--rev', 'HEAD', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toMatchObject([{ rule: 'file-too-large', file: 'big.yaml', line: 1 }]);
    // Its size came from the tree listing: what reaches the parser is a stand-in, not the blob's first 4 MiB.
    const big = (await readFleetRev(dir, 'HEAD')).files.find((f) => f.path === 'big.yaml')!;
    expect(big.bytes.length).toBe(MAX_FILE_BYTES + 1);
    expect(big.bytes.indexOf('#')).toBe(-1);
  });

  it('yaml-alias-bomb: billion laughs is refused, fast', async () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const t = Date.now();
    const { mine } = await withFile('bomb.yaml', lines.join('\n') + '\n');
    expect(Date.now() - t).toBeLessThan(15_000);
    expect(mine).toMatchObject([{ rule: 'yaml-alias-bomb', line: 1, message: expect.stringMatching(/expands too many aliases/) }]);
  });

  it('yaml-too-deep: deeply nested flow collections and block maps give an error, not a crash', async () => {
    for (const text of [`a: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`, `a: ${'{b: '.repeat(20_000)}1${'}'.repeat(20_000)}\n`, Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1\n']) {
      const t = Date.now();
      const { mine } = await withFile('deep.yaml', text);
      expect(Date.now() - t).toBeLessThan(15_000); // no hang; the yaml parser alone took 5 s on 50,000 brackets
      expect(mine.length).toBeGreaterThan(0);
      expect(mine[0].rule).toMatch(/^yaml-(too-deep|syntax)$/);
    }
  });

  it('many problems in one big file: the first 1000 reported exactly, then one too-many-problems, without rescanning the file for each', async () => {
    const docs = Array.from({ length: 20_000 }, (_, i) => `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: n${i} }\nspec: { role: edge, address: "bad address ${i}" }\n`);
    const t = Date.now();
    const { r, mine } = await withFile('many.yaml', docs.join('---\n'));
    const text = validateText(r);
    expect(Date.now() - t).toBeLessThan(60_000);
    expect(mine).toHaveLength(MAX_FILE_PROBLEMS + 1);
    expect(mine[MAX_FILE_PROBLEMS - 1]).toMatchObject({ line: 5 * MAX_FILE_PROBLEMS - 1, column: 30, path: 'spec.address' });
    expect(text).toContain(`many.yaml:${5 * MAX_FILE_PROBLEMS - 1}:30 error spec.address: must be an IP address or a hostname`);
    expect(text).toContain(`spec: { role: edge, address: "bad address ${MAX_FILE_PROBLEMS - 1}" }`);
    // Where checking stopped: the next document.
    expect(mine[MAX_FILE_PROBLEMS]).toMatchObject({ rule: 'too-many-problems', line: 5 * MAX_FILE_PROBLEMS + 1, message: expect.stringMatching(/the rest of it was not checked/) });
    // The documents not checked are not reported as missing either (no "unknown node" elsewhere).
    expect(r.problems.filter((p) => p.file !== 'many.yaml')).toEqual([]);
  });

  it('duplicate-key is reported in the slow path too (a file with an anchor)', async () => {
    const { mine } = await withFile('dup.yaml', 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: &m { name: zeta }\nmetadata: { name: zeta }\nspec: {}\n');
    expect(mine).toMatchObject([{ rule: 'duplicate-key', line: 4 }]);
  });

  it('missing-fleet: an empty repo and a repo without a Fleet', async () => {
    const empty = await tempDir('empty');
    let r = await validateDir(empty);
    expect(r.problems).toMatchObject([{ rule: 'missing-fleet', file: '.', line: 1 }]);
    const dir = await exampleCopy();
    await rm(path.join(dir, 'fleet.yaml'));
    r = await validateDir(dir);
    expect(r.problems.find((p) => p.rule === 'missing-fleet')).toMatchObject({ message: expect.stringMatching(/no Fleet document found/) });
  });

  it('duplicate-fleet: the second Fleet is pointed at, naming where the first is', async () => {
    const dir = await exampleCopy();
    const text = (await readFile(path.join(dir, 'fleet.yaml'), 'utf8')).replace('name: demo', 'name: demo2');
    await writeFile(path.join(dir, 'zz-second.yaml'), text);
    const r = await validateDir(dir);
    expect(r.problems.filter((p) => p.rule === 'duplicate-fleet')).toMatchObject([{ file: 'zz-second.yaml', line: text.split('\n').findIndex((l) => l.startsWith('kind:')) + 1, message: expect.stringMatching(/first is at fleet.yaml:\d+/) }]);
  });

  it('CRLF files, a BOM, comments-only files, trailing --- and files under templates/ or dot-directories', async () => {
    const dir = await exampleCopy();
    for (const f of ['nodes/core.yaml', 'apps/acme.yaml']) {
      const full = path.join(dir, f);
      await writeFile(full, (await readFile(full, 'utf8')).replace(/\n/g, '\r\n'));
    }
    const tfull = path.join(dir, 'tenants/tenants.yaml');
    await writeFile(tfull, '\ufeff' + (await readFile(tfull, 'utf8')) + '---\n');
    await writeFile(path.join(dir, 'notes.yaml'), '# nothing here yet\n');
    await mkdir(path.join(dir, 'templates'), { recursive: true });
    await writeFile(path.join(dir, 'templates/x.yaml'), 'not: [valid');
    await mkdir(path.join(dir, '.github'), { recursive: true });
    await writeFile(path.join(dir, '.github/ci.yml'), 'on: push\n');
    const r = await validateDir(dir);
    expect(r.problems).toEqual([]);
    expect(r.counts.nodes).toBe(10);
  });

  it('CRLF: problems still point at the right line', async () => {
    const dir = await exampleCopy();
    const full = path.join(dir, 'nodes/core.yaml');
    const text = (await readFile(full, 'utf8')).replace('address: 192.0.2.10', 'address: 192.0.2.999').replace(/\n/g, '\r\n');
    await writeFile(full, text);
    const r = await validateDir(dir);
    expect(r.problems).toMatchObject([{ rule: 'invalid-value', file: 'nodes/core.yaml', line: 10, column: 12, path: 'spec.address' }]);
  });

  it('symlinks are not followed (nothing outside the repo is read)', async () => {
    const dir = await exampleCopy();
    const outside = await tempDir('outside');
    await writeFile(path.join(outside, 'evil.yaml'), 'kind: Fleet\n');
    await symlink(path.join(outside, 'evil.yaml'), path.join(dir, 'evil.yaml'));
    await symlink(outside, path.join(dir, 'linked-dir'));
    const r = await validateDir(dir);
    expect(r.problems).toEqual([]);
  });

  it('a FIFO named like a fleet file is skipped, not opened (opening it would block for ever)', async () => {
    const dir = await exampleCopy();
    const mk = spawnSync('mkfifo', [path.join(dir, 'nodes/pipe.yaml')]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    // Through the CLI with a timeout, so that a regression fails the test instead of hanging the run.
    const r = cliSync(['validate', '--fleet', dir], { timeout: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ valid: 9 files/);
  });

  it('hostile scalars: huge numbers, NaN, Infinity, __proto__', async () => {
    const dir = await exampleCopy();
    const full = path.join(dir, 'nodes/core.yaml');
    const text = await readFile(full, 'utf8');
    await writeFile(full, text.replace('cpu: 16, memoryMb: 65536', 'cpu: .inf, memoryMb: 1e400').replace('role: core', 'role: core\n  __proto__: { polluted: true }'));
    const r = await validateDir(dir);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(new Set(r.problems.map((p) => p.path))).toEqual(new Set(['spec.__proto__', 'spec.capacity.cpu', 'spec.capacity.memoryMb']));
    expect(r.problems.find((p) => p.path === 'spec.__proto__')).toMatchObject({ rule: 'unknown-field', line: 10 });
  });
});

describe('the fast YAML path reads exactly what the yaml package reads', () => {
  it('for every file of fleet.example and a set of tricky scalars', async () => {
    const files = (await readdir(EXAMPLE, { recursive: true })).filter((f) => /\.ya?ml$/.test(f));
    const tricky = 'a: 0b11\nb: 1_000\nc: 0o17\nd: 0x1F\ne: -.5\nf: 1e3\ng: .inf\nh: ~\ni: Yes\nj: 2001-12-14\nk: +12\nl: 1.0\nm: "3"\nn: TRUE\no: Null\np: 012\n';
    const texts = [...(await Promise.all(files.map((f) => readFile(path.join(EXAMPLE, f), 'utf8')))), tricky];
    for (const text of texts) {
      const fast = fastDocuments(text);
      if (/[&*!]/.test(text)) continue; // anchors, aliases, tags (or a wildcard domain): the slow path's job
      expect(fast).toBeDefined();
      const slow = parseAllDocuments(text, { version: '1.2' }) as ReturnType<typeof parseAllDocuments> & unknown[];
      expect(fast).toEqual((slow as unknown as { contents: unknown; toJS(): unknown }[]).filter((d) => d.contents !== null).map((d) => d.toJS()));
    }
  });

  it('anchors, tags and empty documents take the slow path', () => {
    expect(fastDocuments('a: &x 1\nb: *x\n')).toBeUndefined();
    expect(fastDocuments('a: !!str 1\n')).toBeUndefined();
    // Empty documents are skipped; an explicit null document is the slow path's to report.
    expect(fastDocuments('a: 1\n---\n')).toEqual([{ a: 1 }]);
    expect(fastDocuments('a: 1\n--- # nothing\n...\n')).toEqual([{ a: 1 }]);
    expect(fastDocuments('a: 1\n---\nnull\n')).toBeUndefined();
    expect(fastDocuments('just text\n')).toBeUndefined();
    expect(fastDocuments('a: 1\na: 2\n')).toBeUndefined();
  });
});

