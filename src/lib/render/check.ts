import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, access, readdir, readFile, lstat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { guardProblems } from '../nginx/guard.js';
import { isTlsFilePath } from '../secrets/paths.js';

/**
 * `render --check`: the real tools on the rendered bundles. nginx -t runs on each node's bundle
 * in place (a temporary prefix with the bundle as `current`, as on a node, so the include tree
 * and relative paths are exactly what the node will load); decK validates every kong.yml.
 */
export interface CheckResult {
  node: string;
  tool: 'nginx' | 'deck';
  ok: boolean;
  /** The tool's own output (stderr and stdout), trimmed. */
  output: string;
}

export interface CheckOptions {
  nginx?: string;
  deck?: string;
  concurrency?: number;
  logger?: Logger;
}

function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ code: e.code === 'ENOENT' ? 127 : 126, output: `cannot run ${cmd}: ${e.message}` }));
    child.on('close', (code) => resolve({ code: code ?? 1, output: Buffer.concat(out).toString().trim() }));
  });
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

/**
 * `nginx -t` already loads modules, engines and embedded code, so the bundle's nginx/ is checked
 * first, as it is on disk: every file parsed and guarded, no symlink and nothing but regular
 * files (an include cannot leave nginx/). Returns why nginx must not run, or undefined.
 */
export async function unsafeBundle(bundleDir: string): Promise<string | undefined> {
  const dir = path.join(bundleDir, 'nginx');
  let entries;
  try {
    if (!(await lstat(dir)).isDirectory()) return `${dir} is not a directory`;
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (e) {
    return `cannot read ${dir}: ${(e as Error).message}`;
  }
  const found: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) continue;
    const full = path.join(e.parentPath, e.name);
    const rel = path.relative(bundleDir, full);
    if (!e.isFile()) {
      found.push(`${rel}: not a regular file`);
      continue;
    }
    if (isTlsFilePath(rel.split(path.sep).join('/'))) continue;
    for (const p of guardProblems(await readFile(full))) found.push(`${rel}:${p.line}:${p.column}: ${p.message}`);
  }
  return found.length ? `refusing to run nginx -t on this bundle:\n${found.join('\n')}` : undefined;
}

export async function nginxTest(bundleDir: string, nginx = 'nginx'): Promise<{ ok: boolean; output: string }> {
  const p = await mkdtemp(path.join(os.tmpdir(), 'edgectl-check-'));
  try {
    await Promise.all(['log', 'run', 'cache', 'tmp'].map((d) => mkdir(path.join(p, d))));
    await symlink(path.resolve(bundleDir), path.join(p, 'current'));
    const r = await run(nginx, ['-t', '-q', '-e', path.join(p, 'log/error.log'), '-p', p + '/', '-c', path.join(p, 'current/nginx/nginx.conf')]);
    // Name the bundle's own files, not the temporary prefix.
    return { ok: r.code === 0, output: r.output.split(path.join(p, 'current') + '/').join(path.resolve(bundleDir) + '/').split(p + '/').join('') };
  } finally {
    await rm(p, { recursive: true, force: true });
  }
}

/**
 * decK 1.4 (Debian's package) validates `_format_version: "3.0"` files as they are (checked by
 * running it: it accepts 3.0 and enforces its entity schema), so no conversion is needed.
 */
export async function deckValidate(kongYml: string, deck = 'deck'): Promise<{ ok: boolean; output: string; missing?: boolean }> {
  const r = await run(deck, ['validate', '--state', kongYml]);
  return { ok: r.code === 0, output: r.output, missing: r.code === 127 };
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

export async function checkBundles(outDir: string, nodes: string[], opts: CheckOptions = {}): Promise<{ results: CheckResult[]; deckMissing: boolean }> {
  const log = opts.logger ?? silentLogger;
  const results: CheckResult[] = [];
  let deckMissing = false;
  let done = 0;
  await mapLimit(nodes, opts.concurrency ?? Math.max(2, os.availableParallelism()), async (node) => {
    const dir = path.join(outDir, node);
    const unsafe = await unsafeBundle(dir);
    const n = unsafe ? { ok: false, output: unsafe } : await nginxTest(dir, opts.nginx);
    results.push({ node, tool: 'nginx', ok: n.ok, output: n.output });
    const kong = path.join(dir, 'kong/kong.yml');
    if (!deckMissing && (await exists(kong))) {
      const d = await deckValidate(kong, opts.deck);
      if (d.missing) deckMissing = true;
      else results.push({ node, tool: 'deck', ok: d.ok, output: d.output });
    }
    if (++done % 100 === 0) log.info(`checked ${done}/${nodes.length} nodes`, { done, total: nodes.length });
  });
  if (deckMissing) log.warn('decK is not installed: kong.yml files were not validated');
  results.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.tool < b.tool ? -1 : 1));
  return { results, deckMissing };
}

