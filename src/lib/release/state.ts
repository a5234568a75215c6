import { randomBytes } from 'node:crypto';
import type { Manifest } from '../bundle/manifest.js';
import type { Transport } from '../transport/types.js';
import { layout, releaseOfLink, RELEASE_NAME } from './layout.js';
import { parseManifest } from './manifest-parse.js';
import { NodeStepError, runScript, STATE_SCRIPT } from './remote.js';
import { checklist, parseVerify, type VerifyResult } from './stage.js';

/** What the node recorded about a release it holds (.edgectl/rel/<name>), written as it is staged, fails or passes. */
export interface ReleaseRecord {
  result: 'staged' | 'good' | 'failed';
  /** For failed: the step it failed at (validate, config, health, …). */
  step?: string;
  at?: string;
  commit?: string;
  digest?: string;
}

export interface Intent {
  op: 'activate' | 'rollback' | 'reset';
  from: string | null;
  to: string;
  by: string;
  at: string;
}

/** What a node holds, read in one round trip. */
export interface NodeState {
  /** false when the root does not exist yet (a node never applied to). */
  initialised: boolean;
  current?: string;
  good?: string;
  /** Complete releases (with a manifest), newest activation first. */
  releases: { name: string; mtime: number }[];
  currentManifest?: Manifest;
  /** Set when current's manifest exists but is unreadable or does not verify. */
  currentManifestError?: string;
  /** A switch that was started and not finished (an apply died midway). */
  intent?: Intent;
  intentRaw?: string;
  lockHolder?: string;
  nginxRunning: boolean;
  /** The node has bash: the one-round-trip activation (oneshot.ts) can run there. */
  bash: boolean;
  records: Map<string, ReleaseRecord>;
  /** When asked for (readState's `verify`) and current is that release: how its files differ from the manifest. */
  currentVerify?: VerifyResult;
}

export interface StateOptions {
  /** Check current's files against this manifest, in the same round trip, when current is its release. */
  verify?: { name: string; manifest: Manifest };
}

export async function readState(t: Transport, root: string, o: StateOptions = {}): Promise<NodeState> {
  const l = layout(root);
  const nonce = randomBytes(6).toString('hex');
  const args = o.verify ? [l.root, nonce, o.verify.name] : [l.root];
  const r = await runScript(t, STATE_SCRIPT, args, { timeoutMs: 60_000, input: o.verify ? checklist(o.verify.manifest) : undefined });
  if (r.code !== 0) throw new NodeStepError(`reading the node's releases failed (exit ${r.code})`, r.stderr.trim());
  if (r.stdout.endsWith('nolinks\n')) throw new NodeStepError('reading the node\'s current and good releases failed: its find cannot list them (GNU findutils with -printf is needed)', r.stderr.trim());
  return parseState(r.stdout, o.verify ? { nonce, manifest: o.verify.manifest } : undefined);
}

export function parseState(out: string, verify?: { nonce: string; manifest: Manifest }): NodeState {
  const s: NodeState = { initialised: true, releases: [], nginxRunning: false, bash: false, records: new Map() };
  if (out.startsWith('noroot')) return { ...s, initialised: false, bash: /^cap\tbash$/m.test(out) };
  let body = out;
  if (verify) {
    const open = `--${verify.nonce}-verify--\n`;
    const close = `--${verify.nonce}-end--\n`;
    const a = out.indexOf(open);
    const b = out.indexOf(close);
    if (a >= 0 && b > a) {
      s.currentVerify = parseVerify(out.slice(a + open.length, b), verify.manifest);
      body = out.slice(0, a) + out.slice(b + close.length);
    }
  }
  const at = body.indexOf('\nmanifest\n');
  const head = at >= 0 ? body.slice(0, at) : body;
  const manifestText = at >= 0 ? body.slice(at + '\nmanifest\n'.length) : '';
  for (const line of head.split('\n')) {
    const [k, ...rest] = line.split('\t');
    const v = rest.join('\t');
    const rel = /^release (\d+(?:\.\d+)?) releases\/([0-9a-f]{20})\/$/.exec(line);
    if (rel) s.releases.push({ name: rel[2], mtime: Number(rel[1]) || 0 });
    else if (k === 'current') s.current = releaseOfLink(v);
    else if (k === 'good') s.good = releaseOfLink(v);
    else if (k === 'rec' && RELEASE_NAME.test(rest[0] ?? '')) {
      const rec = parseRecord(rest.slice(1));
      if (rec) s.records.set(rest[0], rec);
    } else if (k === 'intent') {
      s.intentRaw = v;
      s.intent = parseIntent(v);
    } else if (k === 'lock') s.lockHolder = v;
    else if (k === 'nginx' && v === 'running') s.nginxRunning = true;
    else if (k === 'cap' && v === 'bash') s.bash = true;
  }
  s.releases.sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? -1 : 1));
  if (s.current && manifestText.trim()) {
    const p = parseManifest(manifestText);
    if (p.manifest) s.currentManifest = p.manifest;
    else s.currentManifestError = p.error;
  } else if (s.current) s.currentManifestError = 'current has no manifest.json';
  return s;
}

/** `<result>\t<step>\t<at>\t<{"commit","digest"}>`: written by the node scripts from values edgectl gave them. */
function parseRecord(f: string[]): ReleaseRecord | undefined {
  const [result, step, at, info] = f;
  if (result !== 'staged' && result !== 'good' && result !== 'failed') return undefined;
  const rec: ReleaseRecord = { result };
  if (step && /^[a-z-]{1,20}$/.test(step)) rec.step = step;
  if (at && /^[0-9TZ:.+-]{10,40}$/.test(at)) rec.at = at;
  try {
    const j = JSON.parse(info ?? '{}') as { commit?: unknown; digest?: unknown };
    if (typeof j.commit === 'string' && /^[0-9a-f]{7,64}(-dirty)?$/.test(j.commit)) rec.commit = j.commit;
    if (typeof j.digest === 'string' && /^[0-9a-f]{20,64}$/.test(j.digest)) rec.digest = j.digest;
  } catch {
    /* a damaged record still says what happened */
  }
  return rec;
}

function parseIntent(v: string): Intent | undefined {
  try {
    const j = JSON.parse(v) as Intent;
    if (typeof j.to === 'string' && RELEASE_NAME.test(j.to)) return j;
  } catch {
    /* an unreadable intent is still an unfinished switch: reset treats it as such */
  }
  return undefined;
}
