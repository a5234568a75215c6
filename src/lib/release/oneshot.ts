import { randomBytes } from 'node:crypto';
import { MANIFEST_FILE, releaseName } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import { tarArchive, type TarFile } from '../transport/tar.js';
import type { Transport } from '../transport/types.js';
import type { ActivateRequest, NodeResult, Step } from './activate.js';
import { targetsFromRelease, type HealthTarget } from './health.js';
import { controlName, KEEP_RELEASES, layout, stagingName } from './layout.js';
import { describeHolder, isExpired, breakLock } from './lock.js';
import { NodeStepError } from './remote.js';
import { ONESHOT_BOOT, ONESHOT_SCRIPT } from './scripts-oneshot.js';
import { checklist, partitionBundle, type ReleaseBundle } from './stage.js';
import type { NodeState } from './state.js';

/** The lock a one-round-trip activation takes lives as long as the script may run. */
const ONESHOT_TIMEOUT_MS = 10 * 60_000;

/** Why the one-round-trip path cannot serve this activation (then apply's step-by-step path does), or undefined. */
export function oneShotBlocker(req: ActivateRequest, state: NodeState): string | undefined {
  if (!state.bash) return 'the node has no bash (its /dev/tcp probe checks nginx without curl)';
  if (req.kong && req.manifest.files['kong/kong.yml']) return 'the release configures Kong (validated and applied through its admin API)';
  if (!req.bundle && !state.releases.some((r) => r.name === releaseName(req.manifest.digest))) return 'the release is not on the node and no bytes were given';
  if (!healthTargets(req)?.every(probeSafe)) return 'a health target the node-side probe cannot send as it is';
  // The script checks contents only: a mode changed on the node (a key made readable) is repaired step by step.
  const v = state.current === releaseName(req.manifest.digest) ? state.currentVerify : undefined;
  if (v && v.modeChanged.length > 0 && req.bundle) return `modes changed on the node (${v.modeChanged.slice(0, 3).join(', ')})`;
  return undefined;
}

type Ended = { kind: 'done' } | { kind: 'fallback'; why: string };

/**
 * The whole activation in one exec (scripts-oneshot.ts): the request's bytes go with it as one
 * tar stream, and the answer carries every step's result. Fills `res`; "fallback" means the
 * node needs apply's step-by-step path (a release there that does not match its manifest).
 */
export async function activateOneShot(t: Transport, req: ActivateRequest, state: NodeState, res: NodeResult, step: (s: Step) => void): Promise<Ended> {
  let useSource = true;
  for (let attempt = 0; attempt < 3; attempt++) {
    const out = await runOnce(t, req, state, res, step, useSource);
    if (out.outcome === 'retry' && useSource) {
      useSource = false; // a file copied from an older release did not match: send every byte
      continue;
    }
    if (out.outcome === 'locked' && attempt === 0 && out.holder && isExpired(out.holder, (req.now?.() ?? new Date()).getTime())) {
      await breakLock(t, req.root, out.holder);
      continue;
    }
    return settle(out, res);
  }
  throw new NodeStepError('the activation did not settle after retries', '');
}

interface Answer {
  outcome: string;
  failStep?: Step;
  failText?: string;
  holder?: string;
  stderr: string;
  code: number;
}

async function runOnce(t: Transport, req: ActivateRequest, state: NodeState, res: NodeResult, step: (s: Step) => void, useSource: boolean): Promise<Answer> {
  const l = layout(req.root);
  const name = releaseName(req.manifest.digest);
  // On the node already (a rollback, or a release staged before): verified there, nothing sent.
  const exists = state.releases.some((r) => r.name === name);
  const source = useSource && state.current && state.currentManifest && state.current !== name ? { name: state.current, manifest: state.currentManifest } : undefined;
  const prev = state.current !== name ? state.current : state.good !== name ? state.good : undefined;
  const prevCfg = prev && prev === state.current ? state.currentManifest?.nginxConfigId : undefined;
  const now = req.now?.() ?? new Date();
  const holder = JSON.stringify({ ...req.holder, expires: new Date(now.getTime() + ONESHOT_TIMEOUT_MS).toISOString() });
  const keep = [...new Set([...[name, ...state.releases.map((r) => r.name).filter((n) => n !== name)].slice(0, KEEP_RELEASES), name, ...(prev ? [prev] : [])])];
  const health = healthTargets(req)!;
  const nonce = randomBytes(4).toString('hex');
  const input = exists ? checklist(req.manifest) : streamOf(req.bundle!, source, res, name, nonce);
  const args = [
    l.root, name, nonce, holder, `"id":"${req.holder.id}"`,
    req.expectCurrent === undefined ? '-' : req.expectCurrent ?? '',
    exists ? 'exists' : 'stage', source?.name ?? '', req.nginx.binary, prev ?? '', prevCfg ?? '', req.manifest.nginxConfigId,
    req.nginx.host, String(req.nginx.port), req.op === 'rollback' ? 'rollback' : 'activate', now.toISOString(), JSON.stringify(req.holder.holder),
    JSON.stringify({ commit: req.manifest.fleet.commit ?? null, digest: req.manifest.digest }), keep.join(' '), String(health.length),
  ];
  const script = Buffer.from(ONESHOT_SCRIPT);
  const targets = Buffer.from(health.map((h) => `${h.host}\t${h.path}\t${h.page ? `page-${h.page}` : h.expectStatus}\t${h.expectBody ?? '-'}\n`).join(''));
  let pending = '';
  const r = await t.exec(['bash', '-c', ONESHOT_BOOT, 'edgectl', String(script.length), ...args], {
    input: Buffer.concat([script, targets, typeof input === 'string' ? Buffer.from(input) : input]),
    timeoutMs: ONESHOT_TIMEOUT_MS,
    onStdout: (c) => {
      pending += c.toString('utf8');
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const m = /^step ([a-z]+)$/.exec(pending.slice(0, i));
        pending = pending.slice(i + 1);
        if (m && m[1] !== 'lock') step(m[1] as Step);
      }
    },
  });
  const a: Answer = { outcome: '', stderr: r.stderr.trim(), code: r.code };
  for (const line of r.stdout.split('\n')) {
    const [k, ...rest] = line.split(' ');
    const v = rest.join(' ');
    if (k === 'outcome') a.outcome = v;
    else if (k === 'from') res.from = v || null;
    else if (k === 'fail') [a.failStep, a.failText] = [rest[0] as Step, rest.slice(1).join(' ')];
    else if (k === 'note') res.notes.push(v);
    else if (k === 'reloads') res.reloads++;
    else if (k === 'agent') res.agentReloaded = true;
    else if (k === 'holder') a.holder = v;
  }
  if (!exists && a.outcome !== 'retry') res.fileTransfer = 'stream';
  return a;
}

function settle(a: Answer, res: NodeResult): Ended {
  switch (a.outcome) {
    case 'applied':
      res.outcome = 'applied';
      res.step = 'done';
      return { kind: 'done' };
    case 'unchanged':
      res.outcome = 'unchanged';
      res.step = 'done';
      return { kind: 'done' };
    case 'dirty':
      return { kind: 'fallback', why: a.failText ?? 'the release on the node does not match its manifest' };
    case 'retry':
      // Every byte was sent and still a file did not match its checksum: the node's disk or tools are at fault.
      throw new NodeStepError('files sent to the node did not match their checksums there', a.stderr || a.failText || '');
    case 'stale':
      res.step = 'stale';
      throw new EdgectlError('EDGECTL_PLAN_STALE', a.failText ?? 'current release changed since the plan');
    case 'locked':
      throw new EdgectlError('EDGECTL_LOCKED', `${res.node} is locked by ${describeHolder(a.holder ?? '')}`);
    case 'failed':
    case 'rolled-back':
      res.outcome = a.outcome;
      if (a.failStep) res.step = a.failStep;
      res.cause = a.failText ?? (a.outcome === 'failed' ? 'failed' : undefined);
      if (a.stderr) res.output = a.stderr;
      return { kind: 'done' };
    default:
      throw new NodeStepError(`the activation script stopped without an outcome (exit ${a.code})`, a.stderr);
  }
}

/**
 * The tar the script unpacks at the node's root, so that it makes with one program what took
 * four: the release's staging directory releases/.tmp-<name>-<nonce> (its first entry, 0700) with
 * the files the node does not have and manifest.json, the control lists beside it in
 * releases/.tmp-ctl-<name>-<nonce>, the links current and good will be renamed from
 * (.current.tmp-<nonce>, .good.tmp-<nonce> -> releases/<name>), then the staging directory
 * again with 0755 (GNU tar sets a directory's mode from its last entry once the archive ends),
 * and last a marker the node checks for: a stream cut before its end is refused.
 */
function streamOf(bundle: ReleaseBundle, source: { name: string; manifest: ReleaseBundle['manifest'] } | undefined, res: NodeResult, name: string, nonce: string): Buffer {
  const { copy, moved, send } = partitionBundle(bundle, source);
  const move = moved.flatMap((m) => [m.from, m.to]);
  const files: TarFile[] = [...send, { path: MANIFEST_FILE, data: bundle.manifestData, mode: 0o644 }];
  res.transfer.files += files.length;
  res.transfer.bytes += files.reduce((n, f) => n + (f.data?.length ?? 0), 0);
  res.transfer.copied += copy.length + moved.length;
  const lines = (xs: string[]) => Buffer.from(xs.map((x) => x + '\n').join(''));
  const stage = `releases/${stagingName(name, nonce)}`;
  const ctl = `releases/${controlName(name, nonce)}`;
  return tarArchive([
    { path: stage, kind: 'dir', mode: 0o700 },
    ...files.map((f) => ({ ...f, path: `${stage}/${f.path}` })),
    { path: `${ctl}/copy`, data: lines(copy) },
    { path: `${ctl}/move`, data: lines(move) },
    { path: `${ctl}/sums`, data: Buffer.from(checklist(bundle.manifest)) },
    { path: `${ctl}/sync`, data: lines(syncList([...bundle.files.map((f) => f.path), MANIFEST_FILE])) },
    { path: `.current.tmp-${nonce}`, kind: 'symlink', link: `releases/${name}` },
    { path: `.good.tmp-${nonce}`, kind: 'symlink', link: `releases/${name}` },
    { path: stage, kind: 'dir', mode: 0o755 },
    // Last: GNU tar takes an archive that stops at an entry's boundary (no end blocks) as whole.
    { path: `${ctl}/end`, data: Buffer.from('end\n') },
  ]);
}

/** Every file of the release and every directory above one (not the release's own): what the node syncs before the rename. */
export function syncList(files: string[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) for (let i = f.indexOf('/'); i > 0; i = f.indexOf('/', i + 1)) dirs.add(f.slice(0, i));
  return [...dirs, ...files];
}

function healthTargets(req: ActivateRequest): HealthTarget[] | undefined {
  if (req.health) return req.health;
  if (req.bundle) return targetsFromRelease(req.bundle.files.filter((f) => f.path.startsWith('nginx/conf.d/')));
  return req.releaseFiles ? targetsFromRelease(req.releaseFiles) : undefined;
}

/** A target goes into an HTTP request line and a Host header as it is: nothing that could end either. */
function probeSafe(h: HealthTarget): boolean {
  return /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/.test(h.host) && /^\/[\x21-\x7e]{0,1023}$/.test(h.path) && Number.isInteger(h.expectStatus) && h.expectStatus >= 100 && h.expectStatus <= 599 && /^[\x20-\x7e]{0,200}$/.test(h.expectBody ?? '') && !/^\s|\s$/.test(h.expectBody ?? '');
}
