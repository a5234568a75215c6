import { createTwoFilesPatch } from 'diff';
import { releaseName, type ManifestFile } from '../bundle/manifest.js';
import { PRIVATE_MODE } from '../secrets/paths.js';
import { REDACTED } from './redact.js';
import type { NodeState } from '../release/state.js';
import { kongDiff } from './kong-diff.js';
import { PLAN_FORMAT, type FileDiff, type NodeTarget, type Plan, type PlanAction, type PlanNode } from './types.js';

export interface DesiredNode extends NodeTarget {
  /** The desired bytes of the files a diff may show (isDiffable). */
  files: Map<string, Buffer>;
}

export interface ObservedNode {
  reachable: boolean;
  error?: string;
  state?: NodeState;
  /** current's bytes of the files a diff may show. */
  files?: Map<string, Buffer>;
}

export interface PlanInput {
  createdAt: string;
  edgectl: string;
  fleet: Plan['fleet'];
  local?: Plan['local'];
  diff: boolean;
}

/** The bundle files a plan diff shows (and so the only ones plan reads or keeps the bytes of). */
export const isDiffable = (p: string) => (p.startsWith('nginx/') && !p.startsWith(TLS_DIR)) || p === 'kong/kong.yml';
/** Certificates and keys (render/tls.ts): shown by digest only, never read back or diffed as text. */
const TLS_DIR = 'nginx/tls/';
const MAX_DIFF_BYTES = 256 * 1024;

/** Pure: desired bundles + what the nodes hold → the plan. Same inputs, same plan. */
export function computePlan(desired: DesiredNode[], observed: Map<string, ObservedNode>, input: PlanInput): Plan {
  const nodes = desired.map((d) => planNode(d, observed.get(d.node) ?? { reachable: false, error: 'not observed' }, input.diff));
  return {
    format: PLAN_FORMAT,
    createdAt: input.createdAt,
    edgectl: input.edgectl,
    fleet: input.fleet,
    ...(input.local ? { local: input.local } : {}),
    nodes,
    summary: {
      nodes: nodes.length,
      changes: nodes.filter((n) => n.action !== 'none' && n.action !== 'unreachable').length,
      unchanged: nodes.filter((n) => n.action === 'none').length,
      unreachable: nodes.filter((n) => n.action === 'unreachable').length,
    },
  };
}

function planNode(d: DesiredNode, o: ObservedNode, withDiff: boolean): PlanNode {
  const s = o.state;
  const m = d.manifest;
  const base: PlanNode = {
    node: d.node, role: d.role, route: d.route, root: d.root, nginx: d.nginx, kong: d.kong,
    reachable: o.reachable,
    ...(o.error ? { error: o.error } : {}),
    current: { release: s?.current ?? null },
    desired: { release: releaseName(m.digest), digest: m.digest, commit: m.fleet.commit, nginxConfigId: m.nginxConfigId },
    action: 'none',
    files: { added: [], changed: [], removed: [] },
    health: d.health,
    manifest: m,
  };
  if (!o.reachable || !s) return { ...base, action: 'unreachable', reason: o.error ?? 'unreachable' };
  const cm = s.currentManifest;
  base.current = {
    release: s.current ?? null,
    ...(cm ? { commit: cm.fleet.commit, ...(cm.fleet.dirty ? { dirty: true } : {}) } : {}),
    ...(s.currentManifestError ? { manifestError: s.currentManifestError } : {}),
    nginxRunning: s.nginxRunning,
    pendingIntent: !!(s.intent || s.intentRaw),
    ...(s.lockHolder ? { lockedBy: s.lockHolder } : {}),
  };
  const old = cm?.files ?? {};
  for (const [p, f] of Object.entries(m.files)) {
    if (!old[p]) base.files.added.push(p);
    else if (old[p].sha256 !== f.sha256 || old[p].mode !== f.mode) base.files.changed.push(p);
  }
  for (const p of Object.keys(old)) if (!m.files[p]) base.files.removed.push(p);
  const v = s.current === base.desired.release ? s.currentVerify : undefined;
  if (v && v.modified.length + v.missing.length + v.extra.length + v.modeChanged.length > 0) {
    base.current.modified = v;
    // What apply will put back: the edited and missing files change, the extras go.
    base.files = { added: [...v.missing].sort(), changed: [...new Set([...v.modified, ...v.modeChanged])].sort(), removed: [...v.extra] };
  }
  const [action, reason] = actionOf(base, s);
  base.action = action;
  if (reason) base.reason = reason;
  if (withDiff && action !== 'none') base.diff = diffOf(base, d, o, old);
  return base;
}

function actionOf(n: PlanNode, s: NodeState): [PlanAction, string?] {
  if (!s.current) return ['create', 'no release on the node yet'];
  if (s.current !== n.desired.release) {
    if (s.currentManifestError) return ['update', `current release unreadable: ${s.currentManifestError}`];
    if (n.current.dirty && !n.manifest.fleet.dirty) return ['update', 'current was rendered from uncommitted changes; this release is the commit'];
    if (n.manifest.fleet.dirty) return ['update', 'rendered from uncommitted changes'];
    return ['update'];
  }
  if (s.currentManifestError) return ['update', `current release damaged: ${s.currentManifestError}`];
  if (n.current.modified) return ['update', `modified on node: ${describeEdits(n.current.modified)}`];
  if (s.intent || s.intentRaw) return ['finish', 'a previous apply stopped midway (intent recorded, not completed)'];
  if (!s.nginxRunning) return ['finish', 'nginx is not running'];
  return ['none'];
}

function describeEdits(v: NonNullable<PlanNode['current']['modified']>): string {
  const parts = [['modified', v.modified], ['missing', v.missing], ['extra', v.extra], ['mode changed', v.modeChanged]] as const;
  return parts.filter(([, xs]) => xs.length > 0).map(([k, xs]) => `${k}: ${xs.slice(0, 5).join(', ')}${xs.length > 5 ? ` (+${xs.length - 5} more)` : ''}`).join('; ');
}

function diffOf(n: PlanNode, d: DesiredNode, o: ObservedNode, old: Record<string, ManifestFile>): NonNullable<PlanNode['diff']> {
  const files: FileDiff[] = [];
  for (const p of [...n.files.added, ...n.files.changed, ...n.files.removed].sort()) {
    const a = old[p];
    const b = n.manifest.files[p];
    if (!p.startsWith(TLS_DIR) && a?.mode !== PRIVATE_MODE && b?.mode !== PRIVATE_MODE) continue;
    const change = !a ? 'added' : !b ? 'removed' : 'changed';
    const what = (f?: ManifestFile) => (f ? `sha256:${f.sha256}${f.mode === PRIVATE_MODE ? ' (secret, mode 0600)' : ''}` : '(none)');
    files.push({ path: p, change, patch: `--- ${a ? `a/${p}` : '/dev/null'}\n+++ ${b ? `b/${p}` : '/dev/null'}\n${REDACTED} ${what(a)} -> ${what(b)}\n`, redacted: true });
  }
  const paths = [...n.files.added, ...n.files.changed, ...n.files.removed].filter(isDiffable).filter((p) => p !== 'kong/kong.yml').sort();
  for (const p of paths) {
    const a = o.files?.get(p);
    const b = d.files.get(p);
    const change = n.files.added.includes(p) ? 'added' : n.files.removed.includes(p) ? 'removed' : 'changed';
    const text = (x?: Buffer) => (x && x.length <= MAX_DIFF_BYTES ? x.toString('utf8') : x ? `(${x.length} bytes, too large to diff)\n` : '');
    const patch = createTwoFilesPatch(change === 'added' ? '/dev/null' : `a/${p}`, change === 'removed' ? '/dev/null' : `b/${p}`, text(a), text(b), n.current.release ?? '', n.desired.release);
    files.push({ path: p, change, patch });
  }
  const kongChanged = [...n.files.added, ...n.files.changed, ...n.files.removed].includes('kong/kong.yml');
  return { files, ...(kongChanged ? { kong: kongDiff(o.files?.get('kong/kong.yml')?.toString(), d.files.get('kong/kong.yml')?.toString()) } : {}) };
}
