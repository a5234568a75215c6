import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgectlError } from '../errors.js';

/**
 * The agent as it is shipped to a node (scripts/build-agent.mjs builds it): the one-file bundle
 * and the LevelDB addons for the node's architecture. Its version is the digest of those files,
 * so the same build is the same directory on every node (content-addressed, like releases).
 */
export const AGENT_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../../dist/agent');
export const AGENT_MAIN = 'edgectl-agent.cjs';

export interface AgentPackage {
  /** 20 hex digits of the sha256 over the files (names and digests): the directory name on the node. */
  version: string;
  files: { path: string; data: Buffer; sha256: string }[];
}

/** `uname -m` → classic-level's prebuild folder. */
const ARCH: Record<string, string> = { x86_64: 'linux-x64', amd64: 'linux-x64', aarch64: 'linux-arm64', arm64: 'linux-arm64', armv7l: 'linux-arm', armv6l: 'linux-arm' };

export function prebuildDirFor(unameM: string): string | undefined {
  return ARCH[unameM.trim()];
}

/** Read and hashed once per build and architecture (a 50-node bootstrap asked 50 times). */
const packages = new Map<string, Promise<AgentPackage>>();

export function agentPackage(unameM: string, dist = AGENT_DIST): Promise<AgentPackage> {
  const key = `${dist}\0${unameM.trim()}`;
  let p = packages.get(key);
  if (!p) {
    p = readPackage(unameM, dist);
    packages.set(key, p);
    p.catch(() => packages.delete(key));
  }
  return p;
}

async function readPackage(unameM: string, dist: string): Promise<AgentPackage> {
  const arch = prebuildDirFor(unameM);
  if (!arch) throw new EdgectlError('EDGECTL_BOOTSTRAP', `the node's architecture "${unameM.slice(0, 40)}" has no LevelDB addon in the agent package (supported: x86_64, aarch64, armv7l, armv6l)`);
  const main = await readFile(join(dist, AGENT_MAIN)).catch(() => undefined);
  if (!main) throw new EdgectlError('EDGECTL_BOOTSTRAP', `the agent bundle ${join(dist, AGENT_MAIN)} is missing`, { hint: 'Build it first: `npm run build` (or `npm run build:agent`).' });
  const files = [{ path: AGENT_MAIN, data: main }];
  const pre = join(dist, 'prebuilds', arch);
  const names = (await readdir(pre).catch(() => [] as string[])).filter((n) => n.endsWith('.node')).sort();
  if (names.length === 0) throw new EdgectlError('EDGECTL_BOOTSTRAP', `no LevelDB addon for ${arch} in ${pre}`, { hint: 'Build the agent again: `npm run build:agent`.' });
  for (const n of names) files.push({ path: `prebuilds/${arch}/${n}`, data: await readFile(join(pre, n)) });
  const withSums = files.map((f) => ({ ...f, sha256: createHash('sha256').update(f.data).digest('hex') }));
  const version = createHash('sha256').update(withSums.map((f) => `${f.sha256}  ${f.path}\n`).join('')).digest('hex').slice(0, 20);
  return { version, files: withSums };
}

/** The SHA256SUMS file the node checks the upload against (`sha256sum -c`). */
export function sumsFile(p: AgentPackage): Buffer {
  return Buffer.from(p.files.map((f) => `${f.sha256}  ${f.path}\n`).join(''));
}
