import { isSecretFile } from '../secrets/paths.js';
import { randomBytes } from 'node:crypto';
import { MANIFEST_FILE, isSafeBundlePath, type BundleFile, type Manifest } from '../bundle/manifest.js';
import type { Transport } from '../transport/types.js';
import { layout, stagingName } from './layout.js';
import { mustRun, NodeStepError, runScript } from './remote.js';
import { FINISH_SCRIPT, PREPARE_SCRIPT, REPAIR_SCRIPT, VERIFY_SCRIPT } from './scripts-stage.js';

export interface ReleaseBundle {
  files: BundleFile[];
  manifest: Manifest;
  /** manifest.json's bytes exactly as rendered. */
  manifestData: Buffer;
}

export interface TransferStats {
  /** Files sent over the transport (manifest.json included). */
  files: number;
  bytes: number;
  /** Files copied on the node from a release it already had. */
  copied: number;
  /** Files of an existing release replaced or removed in place. */
  repaired: number;
}

export const noTransfer = (): TransferStats => ({ files: 0, bytes: 0, copied: 0, repaired: 0 });

/**
 * Puts a release on the node. Content-addressed: a file whose sha256 is in a release the node
 * already has (`source`) is copied there, only the others are sent. Every file is verified
 * on the node against the manifest before the staged directory is renamed into place.
 */
export async function stageRelease(t: Transport, root: string, name: string, bundle: ReleaseBundle, source: { name: string; manifest: Manifest } | undefined, stats: TransferStats): Promise<void> {
  const l = layout(root);
  const nonce = randomBytes(4).toString('hex');
  const { copy, moved, send } = partitionBundle(bundle, source);
  // Same content under another path: copied on the node too (one more cp, no bytes sent).
  await mustRun(t, 'preparing the release directory', PREPARE_SCRIPT, [l.root, name, nonce, source && copy.length > 0 ? source.name : ''], { input: copy.map((p) => p + '\n').join(''), timeoutMs: 120_000 });
  const staging = `${l.releases}/${stagingName(name, nonce)}`;
  if (moved.length > 0 && source) {
    const r = await runScript(t, `set -e\ncd "$1"\nwhile IFS= read -r a && IFS= read -r b; do mkdir -p "$2/$(dirname -- "$b")"; cp -p -- "./$a" "$2/$b"; done`, [l.release(source.name), staging], { input: moved.map((m) => `${m.from}\n${m.to}\n`).join(''), timeoutMs: 120_000 });
    if (r.code !== 0) send.push(...moved.map((m) => bundle.files.find((f) => f.path === m.to)!)); // fall back to sending them
  }
  stats.copied += copy.length + moved.length;
  await send_(t, staging, [...send, { path: MANIFEST_FILE, data: bundle.manifestData, mode: 0o644 }], stats);

  const exec = bundle.files.filter((f) => f.mode === 0o755).map((f) => f.path);
  const secret = bundle.files.filter(isSecretFile).map((f) => f.path).join('\n');
  for (let attempt = 0; ; attempt++) {
    const r = await runScript(t, FINISH_SCRIPT, [l.root, name, nonce, secret, ...exec], { input: checklist(bundle.manifest), timeoutMs: 300_000 });
    if (r.code === 0) return;
    const bad = r.code === 4 ? failedPaths(r.stdout) : [];
    if (bad.length === 0 || attempt > 0) throw new NodeStepError(`finishing the release failed (exit ${r.code})`, (r.stderr || r.stdout).trim());
    // A copied file did not match (an old release edited by hand): send the right bytes.
    await send_(t, staging, bundle.files.filter((f) => bad.includes(f.path)), stats);
  }
}

/**
 * What a release needs sent, against a release the node already has (`source`): files at the
 * same path with the same sha256 are copied there, the same content under another path is
 * copied from that path, only the rest is sent. Paths from the node's manifest are hostile:
 * only those that could be bundle paths are used.
 */
export function partitionBundle(bundle: ReleaseBundle, source: { manifest: Manifest } | undefined): { copy: string[]; moved: { from: string; to: string }[]; send: BundleFile[] } {
  const have = new Set<string>();
  const bySha = new Map<string, string>();
  for (const [p, f] of Object.entries(source?.manifest.files ?? {})) {
    if (!isSafeBundlePath(p)) continue;
    have.add(`${p}\0${f.sha256}`);
    if (!bySha.has(f.sha256)) bySha.set(f.sha256, p);
  }
  const copy: string[] = [];
  const moved: { from: string; to: string }[] = [];
  const send: BundleFile[] = [];
  for (const f of bundle.files) {
    const sha = bundle.manifest.files[f.path].sha256;
    if (have.has(`${f.path}\0${sha}`)) copy.push(f.path);
    else if (bySha.has(sha)) moved.push({ from: bySha.get(sha)!, to: f.path });
    else send.push(f);
  }
  return { copy, moved, send };
}

async function send_(t: Transport, dir: string, files: BundleFile[], stats: TransferStats): Promise<void> {
  if (files.length === 0) return;
  await t.writeFiles(files.map((f) => ({ path: `${dir}/${f.path}`, data: f.data, mode: f.mode })));
  stats.files += files.length;
  stats.bytes += files.reduce((n, f) => n + f.data.length, 0);
}

export function checklist(m: Manifest): string {
  return Object.entries(m.files).map(([p, f]) => `${f.sha256}  ${p}\n`).join('');
}

export function failedPaths(out: string): string[] {
  const bad: string[] = [];
  for (const line of out.split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i > 0 && line.slice(i + 2).startsWith('FAILED')) bad.push(line.slice(0, i));
  }
  return bad;
}

export interface VerifyResult {
  /** Files whose bytes differ from the manifest, or that are missing. */
  modified: string[];
  missing: string[];
  /** Files on the node that the manifest does not list. */
  extra: string[];
  /** Files whose mode differs. */
  modeChanged: string[];
}

/** Checks a release directory on the node against its manifest (drift's "modified on node"). */
export async function verifyRelease(t: Transport, dir: string, m: Manifest): Promise<VerifyResult> {
  const r = await runScript(t, VERIFY_SCRIPT, [dir], { input: checklist(m), timeoutMs: 300_000 });
  if (r.code !== 0) throw new NodeStepError(`verifying ${dir} failed (exit ${r.code})`, r.stderr.trim());
  return parseVerify(r.stdout, m);
}

/** sha256sum's non-OK lines, "--files--", then `%y %m %P` of every path: how a release differs from its manifest. */
export function parseVerify(stdout: string, m: Manifest): VerifyResult {
  const [sums, listing = ''] = stdout.split('--files--\n');
  const seen = new Map<string, { type: string; mode: number }>();
  for (const line of listing.split('\n')) {
    const mm = /^([a-z]) ([0-7]+) (.+)$/.exec(line);
    if (mm) seen.set(mm[3], { type: mm[1], mode: parseInt(mm[2], 8) });
  }
  const out: VerifyResult = { modified: [], missing: [], extra: [], modeChanged: [] };
  for (const p of failedPaths(sums)) (seen.has(p) ? out.modified : out.missing).push(p);
  const dirs = new Set<string>();
  for (const p of Object.keys(m.files)) for (let d = p; d.includes('/'); ) dirs.add((d = d.slice(0, d.lastIndexOf('/'))));
  for (const [p, s] of seen) {
    const want = m.files[p];
    if (p === MANIFEST_FILE) continue;
    if (!want) {
      if (!(s.type === 'd' && dirs.has(p))) out.extra.push(p);
    } else if (s.type !== 'f') {
      if (!out.modified.includes(p)) out.modified.push(p);
    }
    else if (s.mode !== want.mode) out.modeChanged.push(p);
  }
  for (const p of Object.keys(m.files)) if (!seen.has(p) && !out.missing.includes(p)) out.missing.push(p);
  // A file inside an extra directory is reported once, as its directory.
  out.extra = out.extra.filter((p) => !out.extra.some((q) => q !== p && p.startsWith(q + '/'))).sort();
  return out;
}

export const isClean = (v: VerifyResult) => v.modified.length + v.missing.length + v.extra.length + v.modeChanged.length === 0;

/** Puts an existing release back to its manifest in place: right bytes renamed over wrong ones, extras removed. */
export async function repairRelease(t: Transport, dir: string, bundle: ReleaseBundle, v: VerifyResult, stats: TransferStats): Promise<void> {
  const fix = [...new Set([...v.modified, ...v.missing, ...v.modeChanged])].filter((p) => bundle.manifest.files[p]);
  const files = bundle.files.filter((f) => fix.includes(f.path));
  await send_(t, dir, files.map((f) => ({ ...f, path: `${f.path}.edgectl-new` })), stats);
  // Only paths that could be bundle paths are ever removed: names from the node are hostile.
  const remove = v.extra.filter((p) => isSafeBundlePath(p));
  if (files.length + remove.length === 0) return;
  await mustRun(t, 'repairing the release', REPAIR_SCRIPT, [dir, ...files.map((f) => '+' + f.path), ...remove.map((p) => '-' + p)], { timeoutMs: 120_000 });
  stats.repaired += files.length + remove.length;
}

