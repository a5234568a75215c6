import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSource, SourceFile } from '../../src/lib/fleet/source.js';
import { validateFleet } from '../../src/lib/fleet/validate.js';
import { validateGithub, validateJson, validateText } from '../../src/lib/output/validate-report.js';
import { cliSync } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { cleanTemps, STACK_TRACE, tempDir } from './helpers.js';
import { mulberry32 } from '../helpers/prng.js';

/**
 * Fuzzing: fleet.example mutated at random (seeded, so a failure can be replayed by its
 * iteration number). The core must never throw, never hang, and every problem must carry a
 * location; a fleet that still passes must hold no value that could inject into a config file
 * or a shell. A few mutated fleets go through the CLI process as well.
 */

const HOSTILE = ['a;b', '}', '{', '\n', '\r\n', '$x', '${x}', '../', '../../etc/passwd', '#', '"', "'", '`id`', '\\', '\u0000', '\u202e', '\t', 'a'.repeat(300), 'x'.repeat(70_000),
  '*x', '&a', '!!binary', '!x', '<<: *a', '[', ']', '{a: [', '- ', ': ', '---', '...', '%YAML 1.1', '? ', '|', '>', '@', 'null', '~', '1e400', '-0', '0x', '.nan', '🙂', 'ä', '__proto__', 'constructor'];
const VALUES = ['123', 'true', 'null', '[]', '{}', '"x"', '-1', '0', '1e400', '.inf', '99999999999999999999', '"1.2.3.4"', '[a, b]', '{ a: 1 }', '""', "''", '&anchor 1', '*anchor'];
const KEYS = ['replicas', 'replica', 'via', 'role', 'kind', 'apiVersion', 'metadata', 'spec', 'name', 'labels', 'tunnel', 'tunnelPort', '<<', 'domains', 'tenant', 'type', 'x'];

type Mutation = (text: string, rnd: () => number) => string | Buffer;
const pick = <T>(xs: readonly T[], rnd: () => number): T => xs[Math.floor(rnd() * xs.length)];
const lineAt = (lines: string[], rnd: () => number) => Math.floor(rnd() * lines.length);

const MUTATIONS: Record<string, Mutation> = {
  deleteLine: (t, r) => { const l = t.split('\n'); l.splice(lineAt(l, r), 1); return l.join('\n'); },
  duplicateLine: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); l.splice(i, 0, l[i]); return l.join('\n'); },
  swapLines: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); const j = lineAt(l, r); [l[i], l[j]] = [l[j], l[i]]; return l.join('\n'); },
  reindent: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); l[i] = ' '.repeat(Math.floor(r() * 6)) + l[i].trimStart(); return l.join('\n'); },
  retype: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); l[i] = l[i].replace(/: .*$/, `: ${pick(VALUES, r)}`); return l.join('\n'); },
  renameKey: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); l[i] = l[i].replace(/^(\s*-?\s*)[A-Za-z_<]+:/, `$1${pick(KEYS, r)}:`); return l.join('\n'); },
  hostileValue: (t, r) => { const l = t.split('\n'); const i = lineAt(l, r); const h = pick(HOSTILE, r); l[i] = l[i].replace(/: (.*)$/, r() < 0.5 ? `: ${h}` : `: ${JSON.stringify(h)}`); return l.join('\n'); },
  hostileInFlow: (t, r) => t.replace(/\[([^\]\n]*)\]/, `[$1, ${JSON.stringify(pick(HOSTILE, r))}]`),
  hostileAnywhere: (t, r) => { const at = Math.floor(r() * t.length); return t.slice(0, at) + pick(HOSTILE, r) + t.slice(at); },
  randomBytes: (t, r) => { const b = Buffer.from(t); const at = Math.floor(r() * b.length); const junk = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256))); return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]); },
  truncate: (t, r) => t.slice(0, Math.floor(r() * t.length)),
  crlf: (t) => t.replace(/\n/g, '\r\n'),
  deleteDocument: (t, r) => { const d = t.split(/^---$/m); d.splice(Math.floor(r() * d.length), 1); return d.join('---'); },
};

const FORBIDDEN = /[\u0000-\u001f\u007f;{}$#"'`\\]/;

/** Every string value in a valid fleet's specs, labels and names (annotations are free text that is never rendered). */
function* strings(v: unknown, where: string): Generator<[string, string]> {
  if (typeof v === 'string') yield [where, v];
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* strings(x, `${where}[${i}]`);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'annotations') { yield [`${where}.<key>`, k]; yield* strings(x, `${where}.${k}`); }
}

let base: SourceFile[] = [];
beforeAll(async () => {
  const rels = (await readdir(EXAMPLE, { recursive: true })).filter((f) => /\.ya?ml$/.test(f)).sort();
  base = await Promise.all(rels.map(async (rel) => ({ path: rel, bytes: await readFile(path.join(EXAMPLE, rel)) })));
});
afterAll(cleanTemps);

function mutated(iteration: number): { files: SourceFile[]; applied: string[] } {
  const rnd = mulberry32(0x5eed + iteration);
  const files = base.map((f) => ({ ...f }));
  const applied: string[] = [];
  const n = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const fi = Math.floor(rnd() * files.length);
    const name = pick(Object.keys(MUTATIONS), rnd);
    const out = MUTATIONS[name](files[fi].bytes.toString('utf8'), rnd);
    files[fi] = { path: files[fi].path, bytes: typeof out === 'string' ? Buffer.from(out) : out };
    applied.push(`${name}@${files[fi].path}`);
  }
  return { files, applied };
}

function source(files: SourceFile[]): FleetSource {
  return { root: '/fuzz', files, dirty: false, from: 'directory', readExtra: async () => undefined, listExtra: async () => [] };
}

const ITERATIONS = 400;

// Generous timeouts: on a loaded 2-core CI machine a CLI process can take seconds to start.
describe('fuzz: fleet.example mutated at random', { timeout: 300_000 }, () => {
  it(`${ITERATIONS} mutated fleets in-process: no throw, no hang, every problem located, valid means injection-free`, () => {
    const rules = new Map<string, number>();
    let valid = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const { files, applied } = mutated(i);
      const ctx = `iteration ${i}: ${applied.join(', ')}`;
      const t = performance.now();
      let r: ReturnType<typeof validateFleet>;
      try {
        r = validateFleet(source(files));
        validateText(r);
        validateGithub(r, { strict: true });
        JSON.stringify(validateJson(r, false));
      } catch (e) {
        throw new Error(`${ctx}: threw ${(e as Error).stack}`);
      }
      expect(performance.now() - t, ctx).toBeLessThan(15_000); // a hang detector, not a speed goal
      const paths = new Set([...files.map((f) => f.path), '.']);
      for (const p of r.problems) {
        expect(paths.has(p.file), ctx).toBe(true);
        expect(p.line, ctx).toBeGreaterThanOrEqual(1);
        expect(p.column, ctx).toBeGreaterThanOrEqual(1);
        expect(p.message.length, ctx).toBeGreaterThan(0);
        expect(p.rule, ctx).toMatch(/^[a-z0-9-]+$/);
        rules.set(p.rule, (rules.get(p.rule) ?? 0) + 1);
      }
      expect(r.errors + r.warnings).toBe(r.problems.length);
      if (r.errors === 0) {
        valid++;
        expect(r.model, ctx).toBeDefined();
        for (const res of [r.model!.fleet, ...r.model!.nodes, ...r.model!.tenants, ...r.model!.apps]) {
          for (const [where, s] of strings({ name: res.name, labels: res.labels, spec: res.spec }, `${res.kind}/${res.name}`)) {
            // displayName and hostKey may hold spaces, nothing else may; none may hold syntax of nginx, Kong or a shell.
            expect(FORBIDDEN.test(s), `${ctx}: ${where} = ${JSON.stringify(s)}`).toBe(false);
          }
        }
      } else {
        expect(r.model).toBeUndefined();
      }
    }
    // The mutations must actually exercise the validator: many rules fire, and some fleets stay valid.
    expect(rules.size).toBeGreaterThan(12);
    expect(valid).toBeGreaterThan(10);
    expect(valid).toBeLessThan(ITERATIONS - 100);
  });

  it('mutated fleets through the CLI process: exit 0 or 1, never a stack trace', async () => {
    for (const i of [3, 42, 123, 256]) {
      const { files, applied } = mutated(i);
      const dir = await tempDir('fuzz');
      for (const f of files) {
        await mkdir(path.dirname(path.join(dir, f.path)), { recursive: true });
        await writeFile(path.join(dir, f.path), f.bytes);
      }
      for (const args of [['validate', '--fleet', dir], ['validate', '--fleet', dir, '--json'], ['validate', '--fleet', dir, '--format', 'github']]) {
        const r = cliSync(args);
        expect([0, 1], `iteration ${i}: ${applied.join(', ')}: ${r.stderr}`).toContain(r.code);
        expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
        expect(r.stderr).not.toMatch(/EDGECTL_INTERNAL/);
        if (args.includes('--json')) expect(JSON.parse(r.stdout).valid).toBe(r.code === 0);
      }
    }
  });
});
