import type { Transport } from '../transport/types.js';
import { checkReleaseName, KEEP_RELEASES, layout } from './layout.js';
import { mustRun, runScript } from './remote.js';
import type { Intent } from './state.js';

/**
 * Records the intent (fsynced) and then swaps `current`: a temp symlink renamed over it with
 * rename(2) (`mv -T`), never `ln -sfn` (which unlinks first on older coreutils). The intent
 * stays until the node has been reloaded and checked: if we die in between, the next apply
 * or the agent's reset-to-work finds it and finishes the job. Args: root, name, intent JSON.
 */
const SWITCH_SCRIPT = `
set -e
cd "$1"
mkdir -p .edgectl
printf '%s\\n' "$3" > .edgectl/intent.json.tmp
sync -- .edgectl/intent.json.tmp
mv -f -T .edgectl/intent.json.tmp .edgectl/intent.json
sync -- .edgectl
rm -f .current.tmp
ln -s "releases/$2" .current.tmp
mv -T .current.tmp current
touch -c "releases/$2"
sync -- .
`;

/** Args: root, name. */
const GOOD_SCRIPT = `
set -e
cd "$1"
rm -f .good.tmp
ln -s "releases/$2" .good.tmp
mv -T .good.tmp good
rm -f .edgectl/intent.json
sync -- . .edgectl
`;

/** Args: root, then the release names to keep. Removes every other complete or partial release. */
const PRUNE_SCRIPT = `
cd "$1/releases" || exit 0
shift
for d in *; do
  [ -d "$d" ] || continue
  keep=0
  for k in "$@"; do [ "$d" = "$k" ] && keep=1; done
  [ $keep = 1 ] || rm -rf -- "./$d" "../.edgectl/rel/$d"
done
exit 0
`;

export async function switchCurrent(t: Transport, root: string, intent: Intent): Promise<void> {
  const l = layout(root);
  await mustRun(t, 'switching current', SWITCH_SCRIPT, [l.root, checkReleaseName(intent.to), JSON.stringify(intent)], { timeoutMs: 30_000 });
}

/** Marks the release good (health checked) and clears the intent: the switch is complete. */
export async function markGood(t: Transport, root: string, name: string): Promise<void> {
  await mustRun(t, 'marking the release good', GOOD_SCRIPT, [layout(root).root, checkReleaseName(name)], { timeoutMs: 30_000 });
}

/** Clears a finished intent without moving good (after a rollback to good). */
export async function clearIntent(t: Transport, root: string): Promise<void> {
  await mustRun(t, 'clearing the intent', 'rm -f "$1/.edgectl/intent.json" && sync -- "$1/.edgectl"', [layout(root).root], { timeoutMs: 30_000 });
}

/** Removes current when a first release failed: the node goes back to having none. */
export async function removeCurrent(t: Transport, root: string): Promise<void> {
  await mustRun(t, 'removing current', 'cd "$1" && rm -f current .edgectl/intent.json && sync -- . .edgectl', [layout(root).root], { timeoutMs: 30_000 });
}

/** Keeps the newest KEEP_RELEASES by activation time, plus current and good whatever their age. */
export async function pruneReleases(t: Transport, root: string, newestFirst: string[], pinned: (string | undefined)[]): Promise<void> {
  const keep = [...new Set([...newestFirst.slice(0, KEEP_RELEASES), ...pinned.filter((p): p is string => !!p)])].map(checkReleaseName);
  await runScript(t, PRUNE_SCRIPT, [layout(root).root, ...keep], { timeoutMs: 120_000 });
}

/**
 * What happened to a release, kept on the node for `history` and rollback's choice:
 * .edgectl/rel/<name> = "<result>\t<step>\t<at>\t<{commit,digest}>". Args: root, name, line.
 */
const RECORD_SCRIPT = `
mkdir -p "$1/.edgectl/rel" && printf '%s\\n' "$3" > "$1/.edgectl/rel/$2.tmp" && mv -f "$1/.edgectl/rel/$2.tmp" "$1/.edgectl/rel/$2"
`;

export async function recordRelease(t: Transport, root: string, name: string, rec: { result: 'staged' | 'good' | 'failed'; step?: string; at: string; commit: string | null; digest: string }): Promise<void> {
  const line = [rec.result, rec.step ?? '', rec.at, JSON.stringify({ commit: rec.commit, digest: rec.digest })].join('\t');
  await runScript(t, RECORD_SCRIPT, [layout(root).root, checkReleaseName(name), line], { timeoutMs: 30_000 });
}
