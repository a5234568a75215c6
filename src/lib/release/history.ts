import { randomBytes } from 'node:crypto';
import type { Manifest } from '../bundle/manifest.js';
import { EdgectlError } from '../errors.js';
import type { Transport } from '../transport/types.js';
import { layout } from './layout.js';
import { parseManifest } from './manifest-parse.js';
import { runScript } from './remote.js';
import type { NodeState } from './state.js';

/** One release on a node, as `edgectl history` shows it and rollback chooses among them. */
export interface HistoryEntry {
  release: string;
  digest?: string;
  commit?: string;
  /** When it was last activated (the release directory's mtime), ISO. */
  activatedAt: string;
  /** good: passed its health check once; failed: refused (nginx -t, reload, config, health); staged: never activated; unknown: made before edgectl recorded results. */
  result: 'good' | 'failed' | 'staged' | 'unknown';
  failedAt?: string;
  current: boolean;
  good: boolean;
}

/** The node's releases, newest activation first. Pure: from one state read. */
export function historyOf(s: NodeState): HistoryEntry[] {
  return s.releases.map((r) => {
    const rec = s.records.get(r.name);
    return {
      release: r.name,
      ...(rec?.digest ? { digest: rec.digest } : r.name === s.current && s.currentManifest ? { digest: s.currentManifest.digest } : {}),
      ...(rec?.commit ? { commit: rec.commit } : r.name === s.current && s.currentManifest?.fleet.commit ? { commit: s.currentManifest.fleet.commit } : {}),
      activatedAt: new Date(r.mtime * 1000).toISOString(),
      result: rec?.result ?? 'unknown',
      ...(rec?.result === 'failed' && rec.step ? { failedAt: rec.step } : {}),
      current: r.name === s.current,
      good: r.name === s.good,
    };
  });
}

/**
 * The release rollback goes to. Default: the release that was good before current (the `good`
 * link when it is not current, else the newest release that passed its health check); a
 * release that failed or was never activated is never a default. `to`: a release name or digest
 * prefix, or a fleet commit prefix; more than one match is an error that lists them.
 */
export function chooseRollback(s: NodeState, to: string | undefined): { release: string; note?: string } | { error: string } {
  const h = historyOf(s);
  const list = h.map((e) => `${e.release}${e.commit ? ` (${e.commit.slice(0, 10)})` : ''} ${e.result}${e.current ? ' current' : ''}`).join(', ') || 'none';
  if (!to) {
    if (s.good && s.good !== s.current && h.some((e) => e.release === s.good)) return { release: s.good };
    const prev = h.find((e) => !e.current && e.result === 'good') ?? h.find((e) => !e.current && e.result === 'unknown');
    return prev ? { release: prev.release } : { error: `no earlier good release on the node to roll back to (releases: ${list})` };
  }
  if (!/^[0-9a-f]{7,64}$/.test(to)) throw new EdgectlError('EDGECTL_USAGE', `--to "${to}" is not a release digest or git revision (7 to 64 hex digits)`);
  const hits = h.filter((e) => e.release.startsWith(to) || (e.digest ?? '').startsWith(to) || (e.commit ?? '').startsWith(to));
  if (hits.length === 0) return { error: `no release on the node matches ${to} (releases: ${list})` };
  if (hits.length > 1) return { error: `${to} matches ${hits.length} releases on the node: ${hits.map((e) => `${e.release}${e.commit ? ` (commit ${e.commit.slice(0, 10)})` : ''}, activated ${e.activatedAt}`).join('; ')}; give more digits` };
  return { release: hits[0].release, ...(hits[0].result === 'failed' ? { note: `${hits[0].release} failed at ${hits[0].failedAt ?? 'an earlier activation'}; activating it as asked` } : {}) };
}

/**
 * A release's manifest and its app fragments (nginx/conf.d/*.conf, for its default health
 * targets) in one round trip, sections delimited by a nonce nothing on the node can guess.
 */
export async function readReleaseForActivation(t: Transport, root: string, name: string): Promise<{ manifest: Manifest; files: { path: string; data: Buffer }[] }> {
  const dir = layout(root).release(name);
  const nonce = randomBytes(6).toString('hex');
  const r = await runScript(t, 'cd "$1" || exit 3; cat manifest.json; for f in nginx/conf.d/*.conf; do [ -f "$f" ] && { printf "\\n--%s-file %s\\n" "$2" "$f"; head -c 262144 "$f"; }; done; exit 0', [dir, nonce], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new EdgectlError('EDGECTL_TRANSPORT', `${t.node}: cannot read release ${name}: ${r.stderr.trim() || `exit ${r.code}`}`);
  const parts = r.stdout.split(`\n--${nonce}-file `);
  const p = parseManifest(parts[0]);
  if (!p.manifest) throw new EdgectlError('EDGECTL_RELEASE_INVALID', `${t.node}: release ${name} has no valid manifest: ${p.error}`);
  const files = parts.slice(1).map((s) => {
    const i = s.indexOf('\n');
    return { path: s.slice(0, i), data: Buffer.from(s.slice(i + 1)) };
  }).filter((f) => /^nginx\/conf\.d\/[A-Za-z0-9._-]+\.conf$/.test(f.path));
  return { manifest: p.manifest, files };
}
