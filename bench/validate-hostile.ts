/**
 * `edgectl validate` on hostile YAML files of (just under) 4 MiB, the largest a fleet file may be.
 *
 *   npm run build && npx vite-node bench/validate-hostile.ts            # every case, 3 runs each
 *   npx vite-node bench/validate-hostile.ts -- --runs 1 --only many-keys,deep --timeout 60
 *
 * Each case is one file added to a copy of fleet.example, validated by the built CLI as a
 * separate process (`node bin/run.js validate --fleet DIR --json`), the way CI would on a pull
 * request. Prints per case the median wall time, the peak RSS of the process (from
 * /usr/bin/time), and the first problem reported; then the worst case. Goal: every case under
 * 2 s and 300 MB.
 *
 * The cases are what defeated or could defeat the parser's guards: flow nesting hidden from a
 * hand-written bracket scan behind `"\\"`, `''`, an apostrophe in a plain scalar, a quote in a
 * block scalar or after `#`; deep block nesting of every kind; a huge number of keys (the yaml
 * package checks duplicate keys in quadratic time), of aliases, of documents and of problems;
 * long lines and long escaped strings.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const runs = Number(opt('runs', '3'));
/** A run still going after this is stopped and reported as such (the unfixed parser took minutes). */
const timeoutMs = Number(opt('timeout', '120')) * 1000;
const only = opt('only', '').split(',').filter(Boolean);

/** Just under the 4 MiB file limit. */
const SIZE = 4 * 1024 * 1024 - 64;

/** Documents a file may hold (src/lib/fleet/parse.ts), less one. */
const DOCS = 49_999;
/** `head`, then `unit` repeated to fill the file, then `tail`. */
const fill = (head: string, unit: string, tail = '\n') => head + unit.repeat(Math.floor((SIZE - head.length - tail.length) / unit.length)) + tail;
/** Flow nesting as deep as the file allows, after `head`. */
const deep = (head: string) => {
  const n = Math.floor((SIZE - head.length - 8) / 2);
  return `${head}b: ${'['.repeat(n)}${']'.repeat(n)}\n`;
};
const lines = (n: number, f: (i: number) => string) => {
  const out: string[] = [];
  let size = 0;
  for (let i = 0; i < n; i++) {
    const l = f(i);
    if (size + l.length + 1 > SIZE - 16) break;
    out.push(l);
    size += l.length + 1;
  }
  return out.join('\n') + '\n';
};

const CASES: Record<string, () => string> = {
  'deep-after-escaped-backslash': () => deep('a: "\\\\"\n'),
  'deep-after-single-quote-escape': () => deep("a: 'it''s'\n"),
  'deep-after-apostrophe-in-plain': () => deep("a: don't\n"),
  'deep-after-quote-in-block-scalar': () => deep('a: |\n  "\n'),
  'deep-after-hash-quote': () => deep('a: b#"\n'),
  'deep-flow-maps': () => fill('a: ', '{b: ', '1\n'),
  'deep-block-sequence-one-line': () => fill('a:\n  ', '- ', 'x\n'),
  'deep-explicit-keys': () => fill('', '? ', 'x\n'),
  'deep-indentation': () => lines(1e6, (i) => `${' '.repeat(i)}a:`),
  'many-keys': () => lines(1e7, (i) => `k${i}: 1`),
  'many-keys-with-anchor': () => 'x: &a 1\n' + lines(1e7, (i) => `k${i}: 1`),
  'many-keys-duplicate-last': () => lines(1e7, (i) => `k${i}: 1`) + 'k0: 2\n',
  'many-keys-flow-one-line': () => {
    let i = 0;
    return fill('a: {', 'k0000000: 1, ', 'z: 1}\n').replace(/k0000000/g, () => `k${(i++).toString(36).padStart(7, '0')}`);
  },
  'many-aliases': () => fill('a: &x [1]\nb: [', '*x, ', '*x]\n'),
  'many-anchors': () => lines(1e7, (i) => `- &a${i} x`),
  'many-empty-documents': () => fill('', '---\n'),
  'many-flow-documents': () => fill('', '--- {}\n'),
  'many-invalid-documents': () => lines(1e7, (i) => `---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: n${i} }\nspec: { role: edge, address: "bad ${i}" }`),
  'many-valid-tenants': () => lines(1e7, (i) => `---\napiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: t${i} }`),
  // Just under the 50,000 documents a file may hold.
  'valid-tenants-at-document-limit': () => lines(DOCS, (i) => `---\napiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: t${i} }`),
  'invalid-documents-at-document-limit': () => lines(DOCS, (i) => `--- {apiVersion: edgectl/v1, kind: Node, metadata: {name: n${i}}, spec: {role: edge, address: "-"}}`),
  'many-flow-items': () => fill('a: [', '1,', '1]\n'),
  'many-block-items': () => fill('a:\n', '- 1\n'),
  'long-plain-scalar': () => fill('a: ', 'x'),
  'long-escaped-string': () => fill('a: "', '\\\\', '"\n'),
  'long-comment-then-nul': () => fill('# ', 'x', '\u0000\n'),
  'many-blank-lines': () => fill('', '\n', 'a: 1\n'),
};

const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

function runOnce(dir: string): { ms: number; cpuMs: number; rssMb: number; status: number | null; first: string } {
  const argv = [path.join(root, 'bin/run.js'), 'validate', '--fleet', dir, '--json'];
  const t0 = performance.now();
  const r = timeBin
    ? spawnSync(timeBin, ['-f', 'EDGECTL_BENCH_RSS %M %U %S', process.execPath, ...argv], { encoding: 'utf8', maxBuffer: 1 << 30, timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, NO_COLOR: '1' } })
    : spawnSync(process.execPath, argv, { encoding: 'utf8', maxBuffer: 1 << 30, timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, NO_COLOR: '1' } });
  const ms = performance.now() - t0;
  const rss = /EDGECTL_BENCH_RSS (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
  let first = '(no JSON)';
  if (r.error || r.signal) return { ms, cpuMs: NaN, rssMb: NaN, status: null, first: `stopped after ${timeoutMs / 1000} s` };
  try {
    const j = JSON.parse(r.stdout) as { problems: { rule: string; file: string; line: number; column: number }[] };
    const p = j.problems.find((x) => x.file === 'hostile.yaml');
    first = p ? `${p.rule} ${p.line}:${p.column}` : 'no problem';
  } catch {
    first = `(stderr: ${(r.stderr ?? '').split('\n').find((l) => l && !l.startsWith('EDGECTL_BENCH_RSS')) ?? ''})`;
  }
  return { ms, cpuMs: rss ? (Number(rss[2]) + Number(rss[3])) * 1000 : NaN, rssMb: rss ? Number(rss[1]) / 1024 : NaN, status: r.status, first };
}

async function main(): Promise<void> {
  if (!existsSync(path.join(root, 'dist/commands/validate.js'))) throw new Error('run `npm run build` first');
  const parent = process.env.BENCH_DIR ?? path.join(root, 'bench', 'out');
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(path.join(parent, 'hostile-'));
  const rows: { name: string; ms: number; cpuMs: number; rssMb: number; first: string; status: number | null }[] = [];
  try {
    const dir = path.join(tmp, 'fleet');
    await cp(path.join(root, 'fleet.example'), dir, { recursive: true });
    console.log(`edgectl validate on hostile 4 MiB files; ${runs} run(s) each, median; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    for (const [name, gen] of Object.entries(CASES)) {
      if (only.length && !only.some((o) => name.includes(o))) continue;
      const text = gen();
      if (Buffer.byteLength(text) > 4 * 1024 * 1024) throw new Error(`${name}: generated ${Buffer.byteLength(text)} bytes, over the limit`);
      await writeFile(path.join(dir, 'hostile.yaml'), text);
      const all = Array.from({ length: runs }, () => runOnce(dir));
      const row = { name, ms: median(all.map((a) => a.ms)), cpuMs: median(all.map((a) => a.cpuMs)), rssMb: Math.max(...all.map((a) => a.rssMb)), first: all[0].first, status: all[0].status };
      rows.push(row);
      console.log(`${name.padEnd(34)} ${(Buffer.byteLength(text) / 1048576).toFixed(2)} MiB  ${row.ms.toFixed(0).padStart(6)} ms (cpu ${row.cpuMs.toFixed(0).padStart(5)})  ${row.rssMb.toFixed(0).padStart(5)} MB  exit ${row.status}  ${row.first}`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const slow = rows.reduce((a, b) => (b.ms > a.ms ? b : a));
  const fat = rows.reduce((a, b) => (b.rssMb > a.rssMb ? b : a));
  console.log(`worst time: ${slow.name} ${slow.ms.toFixed(0)} ms wall, ${slow.cpuMs.toFixed(0)} ms cpu; worst memory: ${fat.name} ${fat.rssMb.toFixed(0)} MB (goal: under 2000 ms and 300 MB)`);
  console.log(`load average now ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (wall times on a shared machine: compare the cpu times)`);
  const bad = rows.filter((r) => r.ms >= 2000 || r.rssMb >= 300 || r.status === null || r.status > 1);
  if (bad.length) console.log(`over the goal, or not a clean exit 0/1: ${bad.map((r) => r.name).join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
