import type { ApplyEvent, ApplyReport } from '../lib/apply/types.js';
import type { RolloutOverrides } from '../lib/apply/rollout.js';
import type { DriftReport } from '../lib/drift/index.js';
import { EdgectlError } from '../lib/errors.js';
import type { FleetDeps, TargetOptions } from '../lib/plan/index.js';
import { ensureConfirmed } from './confirm.js';

export interface DriftRun {
  report: DriftReport;
  fix?: ApplyReport;
}

/**
 * drift, and with --fix the fix, behind the one confirmation of apply, in one pass over one
 * connection per node: the drift is found, the prompt (unless --yes) lists only the drifted
 * nodes, and exactly those are fixed. A dirty fleet is refused before anything, as apply refuses
 * it, unless allowDirty.
 */
export async function driftAndFix(deps: FleetDeps, target: TargetOptions, o: { fix?: { rollout: RolloutOverrides; onEvent?: (e: ApplyEvent) => void }; yes?: boolean; allowDirty?: boolean; show: (r: DriftReport) => void }): Promise<DriftRun> {
  const { checkDrift } = await import('../lib/drift/fix.js');
  if (o.fix && !o.allowDirty) {
    const { worktreeStatus } = await import('../lib/fleet/git.js');
    const st = target.rev ? undefined : await worktreeStatus(target.fleet);
    if (st?.dirty) throw new EdgectlError('EDGECTL_FLEET_DIRTY', `the fleet has uncommitted changes${st.commit ? ` (at commit ${st.commit.slice(0, 12)})` : ''}: drift --fix would ship a release that is in no commit`);
  }
  if (!o.fix || o.yes) return checkDrift(deps, { ...target, fix: o.fix });
  // One pass: the prompt comes between finding the drift and fixing it, over the same connections.
  const confirm = async (report: DriftReport) => {
    const drifted = report.nodes.filter((d) => d.status !== 'clean' && d.status !== 'unreachable');
    o.show(report);
    await ensureConfirmed({
      offTerminal: `drift --fix would change ${drifted.length} node(s) and this is not a terminal: pass --yes`,
      ask: () => `Fix ${drifted.length} node(s): ${drifted.map((d) => `${d.node} (${d.status === 'modified' ? 'modified on node' : d.status})`).join(', ')}?`,
      declinedExit: 2,
    });
  };
  return checkDrift(deps, { ...target, fix: { ...o.fix, confirm } });
}
