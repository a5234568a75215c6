import { EdgectlError } from '../errors.js';

/** The oldest Node.js the bundled agent runs on (package.json engines). */
export const MIN_NODE_MAJOR = 20;

/** What the probe found on the node. */
export interface NodeFacts {
  node: string;
  arch: string;
  libc: string;
  /** glibc's version on the node ("2.36"), when it has glibc. */
  glibc?: string;
  /** The runtime found (or given with --runtime) and what `--version` said. */
  runtime?: string;
  version?: string;
}

/** This machine's runtime: the one copied to a node that has none (process.execPath). */
export interface LocalRuntime {
  arch: string;
  /** glibc this process runs on; undefined on musl. */
  glibc?: string;
  version: string;
}

export type RuntimeChoice = { use: string } | { copy: true };

/** process.arch → the `uname -m` names it runs on. */
const UNAME: Record<string, string[]> = { x64: ['x86_64', 'amd64'], arm64: ['aarch64', 'arm64'], arm: ['armv7l'] };

let local: LocalRuntime | undefined;
export function localRuntime(): LocalRuntime {
  return (local ??= readLocalRuntime());
}

/**
 * Once per process, and without the report's network section: getReport() looks up the name of
 * every open socket's peer (getnameinfo, synchronous), so with 16 SSH connections to nodes that
 * have no reverse DNS each call blocked the event loop for seconds (50 nodes took 60 s, not 10).
 */
function readLocalRuntime(): LocalRuntime {
  const r = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined;
  const was = r?.excludeNetwork;
  if (r) r.excludeNetwork = true;
  try {
    const header = (r?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return { arch: process.arch, glibc: header?.glibcVersionRuntime, version: process.version };
  } finally {
    if (r) r.excludeNetwork = was ?? false;
  }
}

const major = (v?: string) => Number(/^v(\d+)\./.exec(v ?? '')?.[1] ?? 0);
/** "2.36" >= "2.28" */
function atLeast(a: string, b: string): boolean {
  const [x, y] = [a, b].map((s) => s.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}

/**
 * Which Node.js runs the agent: the node's own when it is new enough; else (no --runtime given)
 * a copy of this machine's, when the node's architecture matches and its glibc is at least the
 * one this runtime runs on here (a binary built for an older glibc runs on a newer one, not the
 * reverse; musl never gets a glibc build); else an error naming what the node needs.
 */
export function chooseRuntime(f: NodeFacts, explicit: string | undefined, local: LocalRuntime): RuntimeChoice {
  if (f.runtime && major(f.version) >= MIN_NODE_MAJOR) return { use: f.runtime };
  const found = f.runtime ? `${f.runtime} is Node.js ${f.version || '(does not run)'}` : 'has no Node.js (no `node` on its PATH, /usr/local/bin or /usr/bin)';
  const what = `${f.node}: the agent needs Node.js >= ${MIN_NODE_MAJOR}, and the node ${found}`;
  const fits = (UNAME[local.arch] ?? []).includes(f.arch) && f.libc === 'glibc' && !!local.glibc && !!f.glibc && atLeast(f.glibc, local.glibc) && major(local.version) >= MIN_NODE_MAJOR;
  if (!explicit && fits) return { copy: true };
  const why = explicit ? '' : ` This machine's Node.js cannot be copied there (it is ${local.arch}${local.glibc ? `, glibc ${local.glibc}` : ', not glibc'}; the node is ${f.arch}, ${f.libc}${f.glibc ? ` ${f.glibc}` : ''}).`;
  throw new EdgectlError('EDGECTL_BOOTSTRAP', what, { hint: `Install Node.js >= ${MIN_NODE_MAJOR} for ${f.arch} (${f.libc}) on the node, or pass --runtime PATH naming one already on it.${why} Nothing was installed.` });
}
