import type { Manifest } from '../bundle/manifest.js';
import type { Transport } from '../transport/types.js';
import { layout, releaseOfLink, RELEASE_NAME } from './layout.js';
import { parseManifest } from './manifest-parse.js';
import { NodeStepError, runScript, STATE_SCRIPT } from './remote.js';

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
}

export async function readState(t: Transport, root: string): Promise<NodeState> {
  const l = layout(root);
  const r = await runScript(t, STATE_SCRIPT, [l.root], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new NodeStepError(`reading the node's releases failed (exit ${r.code})`, r.stderr.trim());
  return parseState(r.stdout);
}

export function parseState(out: string): NodeState {
  const s: NodeState = { initialised: true, releases: [], nginxRunning: false };
  if (out.startsWith('noroot')) return { ...s, initialised: false };
  const at = out.indexOf('\nmanifest\n');
  const head = at >= 0 ? out.slice(0, at) : out;
  const manifestText = at >= 0 ? out.slice(at + '\nmanifest\n'.length) : '';
  for (const line of head.split('\n')) {
    const [k, ...rest] = line.split('\t');
    const v = rest.join('\t');
    if (k === 'current') s.current = releaseOfLink(v);
    else if (k === 'good') s.good = releaseOfLink(v);
    else if (k === 'release' && RELEASE_NAME.test(rest[0] ?? '')) s.releases.push({ name: rest[0], mtime: Number(rest[1]) || 0 });
    else if (k === 'intent') {
      s.intentRaw = v;
      s.intent = parseIntent(v);
    } else if (k === 'lock') s.lockHolder = v;
    else if (k === 'nginx' && v === 'running') s.nginxRunning = true;
  }
  s.releases.sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? -1 : 1));
  if (s.current && manifestText.trim()) {
    const p = parseManifest(manifestText);
    if (p.manifest) s.currentManifest = p.manifest;
    else s.currentManifestError = p.error;
  } else if (s.current) s.currentManifestError = 'current has no manifest.json';
  return s;
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
