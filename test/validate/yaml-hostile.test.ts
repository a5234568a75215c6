import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { YAML_OPTIONS } from '../../src/lib/fleet/yaml-lib.js';
import { MAX_FILE_DOCUMENTS } from '../../src/lib/fleet/parse.js';
import { TREE_TOKEN_BUDGET } from '../../src/lib/fleet/yaml-tree.js';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, exampleCopy, STACK_TRACE, validateDir } from './helpers.js';

afterAll(cleanTemps);

/** fleet.example plus one file, through the built CLI: exit status and the problems of that file. */
async function cliWith(name: string, content: string | Buffer) {
  const dir = await exampleCopy();
  await writeFile(path.join(dir, name), content);
  const r = cliSync(['validate', '--fleet', dir, '--json']);
  expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
  const problems = (JSON.parse(r.stdout) as { problems: { rule: string; file: string; line: number; column: number; path: string; message: string }[] }).problems;
  return { status: r.code, mine: problems.filter((p) => p.file === name) };
}

async function libWith(name: string, content: string | Buffer) {
  const dir = await exampleCopy();
  await writeFile(path.join(dir, name), content);
  return (await validateDir(dir)).problems.filter((p) => p.file === name);
}

// A Node that YAML 1.1 reads as valid (a merge key, `yes` as true, 0777 as octal) and YAML 1.2 does not.
const SNEAKY = 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: sneaky }\nspec:\n  <<: { role: edge, address: 192.0.2.99 }\n  kong: yes\n  capacity: { memoryMb: 0777 }\n';

describe('YAML: directives cannot change the schema', { timeout: 120_000 }, () => {
  it('%YAML 1.1 (and any version but 1.2) is refused at the directive', async () => {
    for (const v of ['1.1', '1.0', '1.3']) {
      const { status, mine } = await cliWith('nodes/sneaky.yaml', `# a comment\n%YAML ${v}\n---\n${SNEAKY}`);
      expect(status).toBe(1);
      expect(mine).toMatchObject([{ rule: 'yaml-directive', line: 2, column: 1, message: expect.stringContaining(`%YAML ${v}`) }]);
    }
  });

  it('%TAG and unknown directives are refused; %YAML 1.2 changes nothing', async () => {
    expect((await cliWith('t.yaml', '%TAG !e! tag:yaml.org,2002:\n---\na: !e!str 1\n')).mine).toMatchObject([{ rule: 'yaml-directive', line: 1, message: expect.stringContaining('%TAG') }]);
    expect((await cliWith('t.yaml', '%FOO bar\n---\na: 1\n')).mine).toMatchObject([{ rule: 'yaml-directive', line: 1 }]);
    // A directive before a later document is found there too.
    expect((await cliWith('t.yaml', 'a: 1\n...\n%YAML 1.1\n---\nb: yes\n')).mine.filter((p) => p.rule === 'yaml-directive')).toMatchObject([{ line: 3 }]);
    const plain = await cliWith('nodes/sneaky.yaml', `%YAML 1.2\n---\n${SNEAKY}`);
    expect(plain.mine.map((p) => p.rule)).not.toContain('yaml-directive');
    expect(plain.mine.map((p) => p.path)).toEqual(['spec.address', 'spec.role', 'spec["<<"]', 'spec.kong']);
  });

  it('without a directive: <<, yes and 1:30 are what YAML 1.2 says (errors here), 0777 is decimal', async () => {
    const { mine } = await cliWith('nodes/sneaky.yaml', SNEAKY.replace('capacity: { memoryMb: 0777 }', 'capacity: { cpu: 1:30 }'));
    // role and address are missing: the merge key merged nothing.
    expect(mine).toMatchObject([
      { rule: 'missing-field', line: 5, path: 'spec.address' },
      { rule: 'missing-field', line: 5, path: 'spec.role' },
      { rule: 'unknown-field', line: 5, path: 'spec["<<"]', message: 'unknown field "<<"' },
      { rule: 'wrong-type', line: 6, path: 'spec.kong', message: 'must be a boolean, not string' },
      { rule: 'wrong-type', line: 7, path: 'spec.capacity.cpu', message: 'must be a number, not string' },
    ]);
  });

  it('the yaml package is held to the 1.2 core schema even if a directive reached it', () => {
    const [doc] = parseAllDocuments('%YAML 1.1\n---\na: yes\nb: 0777\nc: 1:30\n<<: { x: 1 }\n', YAML_OPTIONS) as unknown as { toJS(): unknown }[];
    expect(doc.toJS()).toEqual({ a: 'yes', b: 777, c: '1:30', '<<': { x: 1 } });
  });
});

describe('YAML: the depth scan reads quotes as the parser does', { timeout: 120_000 }, () => {
  // Each hid the brackets after it from the old hand-written scan, and the parser then took
  // seconds and gigabytes on them (bench/validate-hostile.ts has the 4 MiB versions).
  const HIDERS = ['a: "\\\\"\n', "a: 'it''s'\n", "a: don't\n", 'a: |\n  "\n', 'a: b#"\n', "a: 'x\\'\n", 'a: "\\"" # "\n'];
  it.each(HIDERS)('flow nesting after %j is refused at the 65th bracket', async (head) => {
    const mine = await libWith('deep.yaml', `${head}b: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    const line = head.split('\n').length;
    expect(mine).toMatchObject([{ rule: 'yaml-too-deep', line, column: 4 + 64, message: 'YAML is nested more than 64 levels deep' }]);
  });

  it('brackets inside quoted strings and comments are not nesting', async () => {
    const deepText = '['.repeat(100);
    const mine = await libWith('tenants/q.yaml', `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: quoted }  # ${deepText}\nspec: { displayName: "x" }\n---\na: &x "${deepText}\\""\nb: '${deepText}'''\n`);
    expect(mine.map((p) => p.rule)).not.toContain('yaml-too-deep');
  });
});

describe('YAML: characters a fleet file may not contain', { timeout: 120_000 }, () => {
  it('a NUL in a comment is refused with its line and column (through the CLI)', async () => {
    const { status, mine } = await cliWith('nodes/nul.yaml', 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: nul }  # ok\u0000 hidden\n');
    expect(status).toBe(1);
    expect(mine).toMatchObject([{ rule: 'yaml-control-character', line: 3, column: 30, message: expect.stringContaining('U+0000 (NUL)') }]);
  });

  it.each([
    ['ESC in a quoted value', 'metadata: { name: e, annotations: { note: "a\u001b[2Jb" } }\n', 3, 45, 'U+001B'],
    ['DEL in a plain value', 'metadata: { name: d\u007f }\n', 3, 20, 'U+007F'],
    ['a C1 control', '# \u009b\n', 3, 3, 'U+009B'],
    ['a right-to-left override in a comment', '# \u202e }"\n', 3, 3, 'U+202E'],
    ['U+FFFF', 'metadata: { name: x }\n# \uffff\n', 4, 3, 'U+FFFF'],
  ])('%s', async (_what, tail, line, column, code) => {
    const mine = await libWith('c.yaml', `apiVersion: edgectl/v1\nkind: Tenant\n${tail}`);
    expect(mine).toMatchObject([{ rule: 'yaml-control-character', line, column, message: expect.stringContaining(code) }]);
  });

  it('bidi and C1 controls written as YAML escapes are refused in the value (the file\'s bytes are plain ASCII)', async () => {
    for (const esc of ['\\u202E', '\\u2066', '\\u200F', '\\u009B', '\\x85']) {
      const mine = await libWith('tenants/esc.yaml', `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: esc, annotations: { note: "a${esc}b" } }\nspec: { displayName: "ACME ${esc}gol" }\n`);
      expect(mine.map((p) => `${p.rule} ${p.path}`), esc).toEqual(['invalid-value metadata.annotations.note', 'invalid-value spec.displayName']);
    }
  });

  it('tabs, CRLF, NEL, emoji and other printable text are fine', async () => {
    const mine = await libWith('tenants/ok.yaml', 'apiVersion: edgectl/v1\r\nkind: Tenant\r\nmetadata:\t{ name: ok }  # caf\u00e9 \u0085 \u{1f600}\r\nspec: { displayName: "Caf\u00e9 \u{1f600}" }\r\n');
    expect(mine.filter((p) => p.severity === 'error')).toEqual([]);
  });
});

describe('YAML: bounded work on big hostile files', { timeout: 120_000 }, () => {
  it(`too-many-documents: more than ${MAX_FILE_DOCUMENTS} documents in a file, refused before parsing`, async () => {
    expect(await libWith('docs.yaml', '--- {}\n'.repeat(MAX_FILE_DOCUMENTS + 1))).toMatchObject([{ rule: 'too-many-documents', line: 1 }]);
    expect((await libWith('docs.yaml', '--- {}\n'.repeat(MAX_FILE_DOCUMENTS))).map((p) => p.rule)).not.toContain('too-many-documents');
  });

  it('yaml-too-complex: a file that needs the slow parser and has more tokens than it may read', async () => {
    const keys = Array.from({ length: TREE_TOKEN_BUDGET / 3 }, (_, i) => `k${i}: 1`).join('\n');
    expect(await libWith('big.yaml', `a: &x 1\n${keys}\n`)).toMatchObject([{ rule: 'yaml-too-complex', line: 1 }]);
  });

  it('a big file js-yaml rejects is reported where js-yaml found the problem', async () => {
    const keys = Array.from({ length: TREE_TOKEN_BUDGET / 3 }, (_, i) => `k${i}: 1`).join('\n');
    const n = TREE_TOKEN_BUDGET / 3;
    expect(await libWith('big.yaml', `${keys}\nk7: 2\n`)).toMatchObject([{ rule: 'duplicate-key', line: n + 1, column: 1 }]);
    expect(await libWith('big.yaml', `${keys}\nz: [1,\n`)).toMatchObject([{ rule: 'yaml-syntax', line: n + 2 }]);
  });

  it('duplicate keys are found by value in the slow path (1 and "1" are one key); an alias may not be a key', async () => {
    expect(await libWith('d.yaml', 'a: &x 1\nb: { 1: x, "1": y }\n')).toMatchObject([{ rule: 'duplicate-key', line: 2, column: 12 }]);
    expect(await libWith('d.yaml', 'a: &x kind\n*x : Node\nkind: Tenant\n')).toMatchObject([{ rule: 'yaml-syntax', line: 2, message: expect.stringMatching(/not an alias/) }]);
  });
});
