import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EdgectlError, errorMessage, isEdgectlError } from '../errors.js';
import { resolvedNodes, type FleetModel, type ResolvedNode } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import { runNodes } from '../nodes/run-nodes.js';
import { selectNodes, type NodeSelection } from '../nodes/select.js';
import { normaliseRoot } from '../release/layout.js';
import { outputOf, runScript } from '../release/remote.js';
import { createConnector, type Connector, type ConnectorOptions } from '../transport/connect.js';
import { tarArchive, type TarFile } from '../transport/tar.js';
import type { ExecResult, Transport } from '../transport/types.js';
import { RE } from '../fleet/values.js';
import { recordCredentials } from './record-credential.js';
import { hopCertErrorText, recordHopCert, wantsHopKey, type HopCertResult } from './hop-cert.js';
import { nodeHopKey } from './hop-key.js';
import type { SecretOpener } from '../secrets/opener.js';
import { nodeTunnelKey } from './tunnel-key-node.js';
import { recordTunnelKeys } from './tunnel-key-record.js';
import { agentPackage, sumsFile } from './package.js';
import { chooseRuntime, localRuntime } from './runtime.js';
import { runInstall } from './detached.js';
import { parseLines, PROBE_SCRIPT } from './scripts.js';
import { renderUnit, systemdVersion, UNIT_PATH } from './unit.js';

export interface BootstrapResult {
  node: string;
  /** installed: something changed and the agent came up healthy; unchanged: nothing to do; rolled-back: the new agent did not (docs/bootstrap.md, Upgrades). */
  status: 'installed' | 'unchanged' | 'rolled-back' | 'failed';
  version?: string;
  runtime?: string;
  /** What changed: runtime, agent, current, credential, unit, enabled. */
  changed: string[];
  /** sha256 of the node's credential (born on the node): the fleet's spec.credential.sha256. */
  credentialSha256?: string;
  /** The fleet already records this credential for the node. */
  credentialRecorded?: boolean;
  /** The fleet file bootstrap wrote the credential into (a change to review and commit). */
  recordedIn?: string;
  /** Why the credential could not be written into the fleet (the node itself is installed). */
  recordError?: string;
  /** tunnel: reverse: the public half of the node's tunnel key (made on the node): the fleet's spec.tunnelKey. */
  tunnelKey?: string;
  /** The fleet already records this tunnel key for the node. */
  tunnelKeyRecorded?: boolean;
  /** A relay or core node of a fleet with a CA: its hop key's public half (SPKI DER, base64), made on the node. */
  hopPublicKey?: string;
  /** Its hop certificate in the fleet (tls/hops/NODE.pem): issued for that key, or kept (docs/tls.md). */
  hopCert?: HopCertResult;
  /** Why the hop certificate could not be issued (the node itself is installed): the fleet CA's key not decryptable, … */
  hopCertError?: string;
  error?: { code: string; message: string; hint?: string; output?: string };
}

export interface BootstrapOptions extends Pick<ConnectorOptions, 'identity' | 'userKnownHosts' | 'sshConfig' | 'agentSocket' | 'systemKnownHosts' | 'connectTimeoutMs'> {
  model: FleetModel;
  fleetRoot: string;
  selection: NodeSelection;
  /** A Node.js binary on the node to run the agent with (default: the node's own `node`, else a copy of this machine's when it fits). */
  runtime?: string;
  concurrency?: number;
  logger?: Logger;
  /** Where the agent bundle is (tests); default dist/agent of this package. */
  agentDist?: string;
  /** Write new credential hashes into the fleet's node files (default true). */
  record?: boolean;
  /** tunnel: reverse nodes: make a new tunnel key on the node even when it has one. */
  rotateTunnelKey?: boolean;
  /** Decrypts the fleet CA's key to sign relays' and core nodes' hop certificates (with record). */
  secrets?: SecretOpener;
}

/**
 * `edgectl bootstrap`: on each node, the agent (one bundle and its LevelDB addon) under
 * <root>/agent/<version> with agent/current swapped by rename(2), a Node.js runtime (the node's,
 * or this machine's copied to <root>/agent/runtime/<digest>/), the node's credential born on
 * the node, the systemd unit installed, enabled and (re)started. Two execs per node: a probe, and
 * one install whose stdin is a tar of what the node lacks. Idempotent: nothing to change, nothing done.
 */
export async function bootstrapNodes(o: BootstrapOptions): Promise<BootstrapResult[]> {
  if (o.runtime !== undefined && !/^\/[A-Za-z0-9._/+-]*$/.test(o.runtime)) throw new EdgectlError('EDGECTL_USAGE', `--runtime "${o.runtime.slice(0, 80)}" must be an absolute path on the node (letters, digits, ._/+- only)`);
  const nodes = selectNodes([...resolvedNodes(o.model).values()], o.selection);
  const conn = createConnector({ ...o, connectRetries: 1 });
  let results: BootstrapResult[];
  try {
    results = await runNodes(conn, nodes, {
      concurrency: o.concurrency ?? 16,
      node: (n) => n.name,
      run: (t, n) => bootstrapOne(t, n, o, () => createConnector({ ...o, connectRetries: 0 })).catch((e) => failed(n.name, e)),
      unreachable: (n, e) => failed(n.name, e),
      onResult: (n, r) => o.logger?.info(`${n.name}: ${r.status}`, {}),
    });
  } finally {
    await conn.close();
  }
  if (o.record !== false) record(o, results);
  if (o.record !== false) await recordHops(o, nodes, results);
  return results;
}

/** New credential hashes into the fleet's node files; a failure is the node's recordError. */
function record(o: BootstrapOptions, results: BootstrapResult[]): void {
  const fileOf = new Map(o.model.nodes.filter((n) => !n.localDemo).map((n) => [n.name, n.source.file]));
  const todo = results.filter((r) => ((r.credentialSha256 && !r.credentialRecorded) || (r.tunnelKey && !r.tunnelKeyRecorded)) && fileOf.has(r.node));
  for (const r of todo) {
    try {
      const file = fileOf.get(r.node)!;
      if (r.credentialSha256 && !r.credentialRecorded) r.recordedIn = recordCredentials(o.fleetRoot, [{ node: r.node, file, sha256: r.credentialSha256 }])[0].file;
      if (r.tunnelKey && !r.tunnelKeyRecorded) r.recordedIn = recordTunnelKeys(o.fleetRoot, [{ node: r.node, file, key: r.tunnelKey }])[0].file;
    } catch (e) {
      r.recordError = errorMessage(e) + (isEdgectlError(e) && e.hint ? ` (${e.hint})` : '');
    }
  }
}

/** Hop certificates for the node-born keys, one node after the other (they write the same fleet); a failure is the node's hopCertError. */
async function recordHops(o: BootstrapOptions, nodes: ResolvedNode[], results: BootstrapResult[]): Promise<void> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const r of results) {
    const n = byName.get(r.node);
    if (!r.hopPublicKey || !n) continue;
    try {
      if (!o.secrets) throw new EdgectlError('EDGECTL_SECRET', 'no age identity to decrypt the fleet CA\'s key with');
      r.hopCert = await recordHopCert({ fleetRoot: o.fleetRoot, model: o.model, node: n, spki: Buffer.from(r.hopPublicKey, 'base64'), secrets: o.secrets });
    } catch (e) {
      r.hopCertError = hopCertErrorText(e);
    }
  }
}

function failed(node: string, e: unknown): BootstrapResult {
  return { node, status: 'failed', changed: [], error: { code: isEdgectlError(e) ? e.code : 'EDGECTL_BOOTSTRAP', message: errorMessage(e), ...(isEdgectlError(e) ? { hint: e.hint } : {}), ...(outputOf(e) ? { output: outputOf(e) } : {}) } };
}

async function bootstrapOne(t: Transport, n: ResolvedNode, o: BootstrapOptions, reconnect: () => Connector): Promise<BootstrapResult> {
  const root = normaliseRoot(n.root);
  const probed = parseLines((await mustProbe(t, n.name, [root, o.runtime ?? ''])).stdout);
  const kv = probed.kv;
  // The version depends on the node's architecture (its LevelDB addon), which the probe tells.
  const pkg = await agentPackage(kv.get('arch') ?? '', o.agentDist);
  const choice = chooseRuntime({ node: n.name, arch: kv.get('arch') ?? '', libc: kv.get('libc') ?? '', glibc: kv.get('glibc'), runtime: kv.get('runtime') || undefined, version: kv.get('version') }, o.runtime, localRuntime());
  const copy = 'copy' in choice ? await ownRuntime() : undefined;
  const runtime = copy ? `${root}/agent/runtime/${copy.digest}/node` : 'use' in choice ? choice.use : '';
  if (kv.get('systemd') !== 'yes') {
    throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: the node does not run systemd (no systemctl, or /run/systemd/system missing)`, { hint: 'Run the agent under the node\'s own init instead (docs/bootstrap.md, "Nodes without systemd"). Nothing was installed.' });
  }
  if (kv.get('bash') !== 'yes') {
    throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: the node has no bash (the install checks the new agent's /healthz through bash's /dev/tcp)`, { hint: 'Install bash on the node. Nothing was installed.' });
  }
  const unit = await renderUnit({ root, runtime, nginx: n.nginx.binary }, systemdVersion(kv.get('systemdv')));
  const files: TarFile[] = [{ path: '.unit.new', data: Buffer.from(unit), mode: 0o644 }];
  if (copy && !probed.rt.includes(copy.digest)) files.push({ path: `.incoming-runtime-${copy.digest}/node`, data: copy.data, mode: 0o755 });
  if (!probed.have.includes(pkg.version)) {
    const dir = `.incoming-${pkg.version}`;
    files.push({ path: `${dir}/SHA256SUMS`, data: sumsFile(pkg), mode: 0o644 });
    for (const f of pkg.files) files.push({ path: `${dir}/${f.path}`, data: f.data, mode: 0o644 });
  }
  // A reverse node's gate runs detached (its restart takes down the tunnel this exec rides): detached.ts.
  const run = await runInstall(t, { node: n.name, root, args: [root, pkg.version, UNIT_PATH, copy?.digest ?? '', copy?.sha256 ?? ''], input: tarArchive(files), detach: n.tunnel === 'reverse', connector: reconnect, logger: o.logger });
  try {
    return await installed(run.transport, n, o, root, runtime, pkg, run.result);
  } finally {
    await run.close();
  }
}

/** What the install's output says, and for a reverse node its tunnel key (over `t`, the connection the install left). */
async function installed(t: Transport, n: ResolvedNode, o: BootstrapOptions, root: string, runtime: string, pkg: { version: string }, r: ExecResult): Promise<BootstrapResult> {
  const out = parseLines(r.stdout);
  // What the node says is hostile too: only a well-formed digest goes anywhere near the fleet.
  const credentialSha256 = out.kv.get('credential');
  if (credentialSha256 !== undefined && !RE.sha256.test(credentialSha256)) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: the node answered a malformed credential digest`, { detail: credentialSha256.slice(0, 100) });
  const base: Omit<BootstrapResult, 'status'> = { node: n.name, version: pkg.version, runtime, changed: out.changed, credentialSha256, credentialRecorded: !!credentialSha256 && n.credentialSha256 === credentialSha256 };
  const result = out.kv.get('result');
  const ok = r.code === 0 && (result === 'installed' || result === 'unchanged');
  const before = base.changed.length;
  if (ok && n.tunnel === 'reverse') {
    const k = await nodeTunnelKey(t, n.name, root, runtime, o.rotateTunnelKey === true);
    base.changed.push(...k.changed);
    base.tunnelKey = k.publicKey;
    base.tunnelKeyRecorded = n.tunnelKey === k.publicKey;
    if (k.credentialSha256) Object.assign(base, { credentialSha256: k.credentialSha256, credentialRecorded: n.credentialSha256 === k.credentialSha256 });
  }
  // A relay or core node of a fleet with a CA: its hop key, made on the node; the certificate is signed after (recordHops).
  if (ok && wantsHopKey(o.fleetRoot, n)) {
    const h = await nodeHopKey(t, n.name, root, runtime);
    base.changed.push(...h.changed);
    base.hopPublicKey = h.spki.toString('base64');
  }
  if (ok && result === 'unchanged' && base.changed.length > before) return { ...base, status: 'installed' };
  if (r.code === 5 && result === 'rolled-back') return { ...base, status: 'rolled-back', error: { code: 'EDGECTL_BOOTSTRAP', message: `${n.name}: agent ${pkg.version} did not come up healthy; back to the previous agent`, output: r.stderr.trim() } };
  if (r.code !== 0 || (result !== 'installed' && result !== 'unchanged')) {
    throw new EdgectlError('EDGECTL_BOOTSTRAP', `${n.name}: installing the agent failed (exit ${r.code})`, { detail: (r.stderr || r.stdout).trim().slice(-2000) });
  }
  return { ...base, status: result };
}

/** This machine's Node.js binary, read and hashed once per process (it is ~100 MB). */
let own: Promise<{ data: Buffer; sha256: string; digest: string }> | undefined;
function ownRuntime() {
  return (own ??= readFile(process.execPath).then((data) => {
    const sha256 = createHash('sha256').update(data).digest('hex');
    return { data, sha256, digest: sha256.slice(0, 20) };
  }));
}

async function mustProbe(t: Transport, node: string, args: string[]) {
  const r = await runScript(t, PROBE_SCRIPT, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: probing the node failed (exit ${r.code})`, { detail: r.stderr.trim() });
  return r;
}
