import { EdgectlError } from '../lib/errors.js';
import { planTable } from '../lib/output/plan-table.js';
import type { Plan } from '../lib/plan/types.js';
import { ensureConfirmed } from './confirm.js';
import { tableOf, type Colors } from './output.js';

/**
 * Before apply sends anything: a plan rendered from a working tree with uncommitted changes is
 * refused unless --allow-dirty (what git holds is what the fleet is); then the one confirmation,
 * showing only the nodes that would change.
 */
export async function confirmApply(plan: Plan, o: { yes?: boolean; allowDirty?: boolean; colors: Colors; dirtyOnlyByHopRenewal?: boolean }): Promise<void> {
  const n = plan.summary.changes;
  // The only uncommitted changes are the hop certificates this apply renewed (docs/tls.md): shipped, to commit.
  if (plan.fleet.dirty && !o.allowDirty && !o.dirtyOnlyByHopRenewal) {
    const at = plan.fleet.commit ? ` (at commit ${plan.fleet.commit.slice(0, 12)})` : '';
    throw new EdgectlError('EDGECTL_FLEET_DIRTY', `the fleet has uncommitted changes${at}: ${n} node(s) would get a release that is in no commit`);
  }
  const changing = { ...plan, nodes: plan.nodes.filter((x) => x.action !== 'none' && x.action !== 'unreachable') };
  const others = plan.nodes.length - changing.nodes.length;
  await ensureConfirmed({
    yes: o.yes,
    offTerminal: `${n} node(s) would change and this is not a terminal`,
    ask: () => (process.stderr.write(tableOf(planTable(changing, o.colors), process.stderr) + '\n'), `Apply to ${n} node(s)${others ? ` (${others} other(s) unchanged or unreachable, not shown)` : ''}?`),
  });
}
