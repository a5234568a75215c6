import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, relative, resolve, isAbsolute } from 'node:path';
import { gzipSync } from 'node:zlib';
import { agentConfigSchema, type AgentConfig } from '../bundle/agent-json.js';
import { EdgectlError, errorMessage, isEdgectlError } from '../errors.js';
import type { LoadedFleet } from '../fleet/load.js';
import { resolvedNodes } from '../fleet/model.js';
import { normaliseRoot } from '../release/layout.js';
import { renderFleet } from '../render/index.js';
import { tarArchive, type TarFile } from '../transport/tar.js';
import { recordCredentials } from './record-credential.js';
import { agentPackage, prebuildDirFor, sumsFile } from './package.js';
import { packInstallScript, PACK_RUNTIME_PLACEHOLDER } from './pack-install.js';
import { generateTunnelKey } from './tunnel-key.js';
import { recordTunnelKeys } from './tunnel-key-record.js';
import { BACKOFF_SYSTEMD, renderUnit } from './unit.js';

export interface PackOptions {
  loaded: LoadedFleet;
  fleetRoot: string;
  node: string;
  /** The installer to write (0600, created: never over an existing file, never inside the fleet). */
  out: string;
  /** The node's `uname -m` (default: this machine's). */
  arch?: string;
  /** A Node.js binary on this machine to ship (for a node without one); default: the node's own node. */
  runtime?: string;
  agentDist?: string;
  edgectlVersion: string;
  /** Write the key and credential hash into the fleet (default true). */
  record?: boolean;
}

export interface PackResult {
  format: 'edgectl-pack/v1';
  node: string;
  out: string;
  bytes: number;
  arch: string;
  agentVersion: string;
  runtime: string;
  tunnelKey: string;
  credentialSha256: string;
  /** The fleet file the key and hash were written into (a change to review and commit). */
  recordedIn?: string;
  recordError?: string;
}

/** process.arch → `uname -m`. */
const UNAME: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l' };

/**
 * `edgectl bootstrap --pack NODE --out FILE`: the installer for a node nobody can reach (docs/bootstrap.md,
 * "Packed installer"). A tar.gz holding what bootstrap would upload (agent bundle and addon for the
 * node's architecture, optionally a runtime, the unit) plus what opens the node's first tunnel: a
 * tunnel key and a forwarding credential born here, and a release-independent agent.json (the
 * node's rendered one without its FastCGI apps) naming the relay, its pinned host key and the port.
 * The key's public half and the credential's hash go into the fleet now, so the next apply to the
 * relay accepts the node; the node's first bootstrap makes both anew (the archive's stop working).
 */
export async function packNode(o: PackOptions): Promise<PackResult> {
  const n = resolvedNodes(o.loaded.model).get(o.node);
  if (!n) throw new EdgectlError('EDGECTL_USAGE', `no node named ${JSON.stringify(o.node.slice(0, 80))} in the fleet`);
  if (n.tunnel !== 'reverse') throw new EdgectlError('EDGECTL_USAGE', `${n.name}: --pack is for a node with tunnel: reverse (a node nobody can reach); bootstrap a reachable node over SSH`);
  const out = resolve(o.out);
  refuseInsideFleet(out, o.fleetRoot);
  const root = normaliseRoot(n.root);
  const arch = o.arch ?? UNAME[process.arch] ?? process.arch;
  if (!prebuildDirFor(arch)) throw new EdgectlError('EDGECTL_USAGE', `--arch "${arch.slice(0, 40)}" is not one the agent has a LevelDB addon for (x86_64, aarch64, armv7l, armv6l)`);
  const pkg = await agentPackage(arch, o.agentDist);

  const [bundle] = await renderFleet(o.loaded, { nodes: [n.name], edgectlVersion: o.edgectlVersion });
  const rendered = bundle?.files.find((f) => f.path === 'agent/agent.json');
  if (!rendered) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: render wrote no agent/agent.json for the node`);
  const first = firstConfig(n.name, JSON.parse(rendered.data.toString('utf8')) as AgentConfig);

  const files: TarFile[] = [];
  const top = `edgectl-pack-${n.name}`;
  let runtime = PACK_RUNTIME_PLACEHOLDER;
  let rt: { digest: string; sha256: string } | undefined;
  if (o.runtime) {
    const data = await readFile(o.runtime).catch((e: unknown) => {
      throw new EdgectlError('EDGECTL_USAGE', `--runtime ${o.runtime}: ${errorMessage(e)}`);
    });
    const sha256 = createHash('sha256').update(data).digest('hex');
    rt = { digest: sha256.slice(0, 20), sha256 };
    runtime = `${root}/agent/runtime/${rt.digest}/node`;
    files.push({ path: `${top}/runtime/node`, data, mode: 0o755 });
  }
  // The node's systemd is unknown at pack time: both units go in, install.sh takes the one for the
  // node's version, which is the one its first bootstrap renders (so that bootstrap does not
  // restart the agent whose tunnel it runs through for a unit that did not really change).
  const unit = await renderUnit({ root, runtime, nginx: n.nginx.binary }, undefined);
  const unitBackoff = await renderUnit({ root, runtime, nginx: n.nginx.binary }, BACKOFF_SYSTEMD);
  const key = generateTunnelKey(n.name);
  const token = randomBytes(32).toString('hex');
  const credentialSha256 = createHash('sha256').update(token).digest('hex');
  files.push(
    { path: `${top}/install.sh`, data: Buffer.from(packInstallScript({ node: n.name, root, version: pkg.version, arch, runtime: rt })), mode: 0o755 },
    { path: `${top}/edgectl-agent.service`, data: Buffer.from(unit), mode: 0o644 },
    { path: `${top}/edgectl-agent.service.backoff`, data: Buffer.from(unitBackoff), mode: 0o644 },
    { path: `${top}/first.json`, data: Buffer.from(JSON.stringify(first, null, 2) + '\n'), mode: 0o644 },
    { path: `${top}/secrets/tunnel-key`, data: key.privateKey, mode: 0o600 },
    { path: `${top}/secrets/agent-token`, data: Buffer.from(token), mode: 0o600 },
    { path: `${top}/agent/${pkg.version}/SHA256SUMS`, data: sumsFile(pkg), mode: 0o644 },
    ...pkg.files.map((f) => ({ path: `${top}/agent/${pkg.version}/${f.path}`, data: f.data, mode: 0o644 })),
  );
  const archive = gzipSync(tarArchive(files));
  writeNew(out, archive);

  const result: PackResult = { format: 'edgectl-pack/v1', node: n.name, out, bytes: archive.length, arch, agentVersion: pkg.version, runtime: rt ? runtime : 'the node\'s own node (found at install)', tunnelKey: key.publicKey, credentialSha256 };
  if (o.record !== false) {
    const file = o.loaded.model.nodes.find((x) => x.name === n.name)?.source.file;
    try {
      if (!file) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: the fleet file defining the node is not known`);
      recordTunnelKeys(o.fleetRoot, [{ node: n.name, file, key: key.publicKey }]);
      result.recordedIn = recordCredentials(o.fleetRoot, [{ node: n.name, file, sha256: credentialSha256 }])[0].file;
    } catch (e) {
      result.recordError = errorMessage(e) + (isEdgectlError(e) && e.hint ? ` (${e.hint})` : '');
    }
  }
  return result;
}

/**
 * What the packed node's agent runs until its first release: the rendered agent.json (tunnel,
 * spool, hop) without the FastCGI apps, whose code only a release brings. A relay whose host key
 * the fleet does not pin gets no tunnel from the node at all, so it is refused here.
 */
export function firstConfig(node: string, rendered: AgentConfig): AgentConfig {
  const { fastcgi: _apps, ...cfg } = rendered as AgentConfig & { fastcgi?: unknown };
  if (!cfg.tunnel) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: its rendered agent.json has no tunnel`);
  if (cfg.tunnel.hostKeys.length === 0) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: the fleet pins no host key for relay ${cfg.tunnel.relay}, so the node would open no tunnel`, { hint: `Record it first: edgectl trust ${cfg.tunnel.relay} (check the fingerprint out of band), and commit known_hosts.` });
  const parsed = agentConfigSchema.safeParse(cfg);
  if (!parsed.success) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: the packed agent.json would be invalid at ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
  return cfg as AgentConfig;
}

/** The archive holds a private key: never written into the fleet repo, where `git add -A` would take it. */
function refuseInsideFleet(out: string, fleetRoot: string): void {
  let dir: string;
  let fleet: string;
  try {
    dir = realpathSync(dirname(out));
    fleet = realpathSync(fleetRoot);
  } catch (e) {
    throw new EdgectlError('EDGECTL_USAGE', `--out ${out}: ${errorMessage(e)}`);
  }
  const rel = relative(fleet, resolve(dir, basename(out)));
  if (!rel.startsWith('..') && !isAbsolute(rel)) throw new EdgectlError('EDGECTL_USAGE', `--out ${out} is inside the fleet repo ${fleet}: the archive holds the node's private tunnel key and credential`, { hint: 'Write it outside the repo (e.g. on the USB stick), and delete it once the node is installed.' });
}

/** 0600, O_EXCL and O_NOFOLLOW: never over an existing file or through a link; fsynced. */
function writeNew(path: string, data: Buffer): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EdgectlError('EDGECTL_USAGE', `--out ${path}: ${code === 'EEXIST' ? 'exists already (a pack is never written over a file)' : errorMessage(e)}`);
  }
  try {
    writeSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(path);
    throw new EdgectlError('EDGECTL_BOOTSTRAP', `writing ${path} failed: ${errorMessage(e)}`);
  }
}
