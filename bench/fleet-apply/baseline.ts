import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The minimal apply edgectl is measured against (baseline.sh): one OpenSSH connection and one
 * exec per node, the node's rendered bundle (`edgectl render`) as a tar on stdin; stage, sync,
 * `nginx -t`, atomic switch, reload. Here: its input file and its command line.
 */
export const BASELINE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'baseline.sh');

export interface BaselineNode {
  name: string;
  address: string;
  port: number;
  /** "master": the relay itself, its exec run on baseline.sh's master connection. */
  hop?: 'master';
}

/** A release id for a bundle: sha256 of its file names and contents, so a changed bundle is a new release. */
async function bundleId(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(path.join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = path.join(rel, e.name);
      if (e.isDirectory()) await walk(p);
      else h.update(`${p}\0`).update(await readFile(path.join(dir, p))).update('\0');
    }
  };
  await walk('.');
  return h.digest('hex').slice(0, 16);
}

/** Writes baseline.sh's node list (name address port root bundle id); returns how many nodes have a bundle. */
export async function writeBaselineList(file: string, nodes: BaselineNode[], roots: Map<string, string>, bundles: string): Promise<number> {
  const lines: string[] = [];
  for (const n of nodes) {
    const bundle = path.join(bundles, n.name);
    if (!existsSync(bundle)) continue;
    lines.push([n.name, n.address, n.port, roots.get(n.name)!, bundle, await bundleId(bundle), ...(n.hop ? [n.hop] : [])].join(' '));
  }
  await writeFile(file, lines.join('\n') + '\n');
  return lines.length;
}

export function baselineArgv(mode: 'apply' | 'noop', list: string, concurrency: number): string[] {
  return ['bash', BASELINE_SCRIPT, mode, list, String(concurrency)];
}

export function baselineEnv(o: { clientKey: string; knownHosts: string; tmp: string; relay?: { host: string; port: number } }): NodeJS.ProcessEnv {
  return { ...process.env, SSH_KEY: o.clientKey, KNOWN_HOSTS: o.knownHosts, BASELINE_TMP: o.tmp, ...(o.relay ? { RELAY_HOST: o.relay.host, RELAY_PORT: String(o.relay.port) } : {}) };
}

/** "baseline apply: 50 nodes, 0 failed" → counts from the script's own lines. */
export function baselineCounts(stdout: string): { ok: number; unchanged: number; failed: number } {
  const count = (re: RegExp) => stdout.split('\n').filter((l) => re.test(l)).length;
  return { ok: count(/^ok /), unchanged: count(/^unchanged /), failed: count(/^FAIL /) };
}
