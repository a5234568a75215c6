import { EdgectlError } from '../errors.js';
import type { FleetDeps, TargetOptions } from '../plan/index.js';
import type { Plan } from '../plan/types.js';
import type { HopRenewal } from '../tls-hop/apply-renew.js';
import { bundlesOf, openSavedPlan } from './index.js';
import { rolloutOf, type RolloutOverrides } from './rollout.js';
import { applyPlan } from './run.js';
import type { ApplyEvent, ApplyReport } from './types.js';

export interface ApplyFleetOptions extends TargetOptions {
  /** A plan saved by `edgectl plan --out`: applied as it is; the fleet is read for addresses and rollout defaults only. */
  planFile?: string;
  /** The operator's rollout; what is unset comes from the fleet's spec.rollout. */
  rollout: RolloutOverrides;
  /** Asked before anything is sent, when the plan changes nodes: throws to stop with nothing changed. */
  confirm?: (plan: Plan, o: { dirtyOnlyByHopRenewal: boolean }) => Promise<void>;
  onEvent?: (e: ApplyEvent) => void;
  /** Aborting stops starting new nodes; nodes in flight finish or roll back. */
  signal?: AbortSignal;
}

/** Plan now (or open the saved plan), confirm, roll out. The connector lives exactly as long as this call. */
export async function applyFleet(deps: FleetDeps, o: ApplyFleetOptions): Promise<{ plan: Plan; report: ApplyReport; hopRenewals: HopRenewal[] }> {
  const opened = o.planFile ? await openPlanFile(deps, o, o.planFile) : await planNow(deps, o);
  const { plan, bundles, connector, model, states, hopRenewals, dirtyOnlyByHopRenewal } = opened;
  try {
    const rollout = rolloutOf(o.rollout, model.fleet.spec.rollout, o.concurrency);
    if (plan.summary.changes > 0) await o.confirm?.(plan, { dirtyOnlyByHopRenewal });
    const report = await applyPlan(plan, bundles, { connector, logger: deps.logger, now: deps.now, signal: o.signal, onEvent: o.onEvent, states }, rollout);
    return { plan, report, hopRenewals };
  } finally {
    await connector.close();
  }
}

async function openPlanFile(deps: FleetDeps, o: ApplyFleetOptions, file: string) {
  if (o.nodes?.length || Object.keys(o.selector ?? {}).length) throw new EdgectlError('EDGECTL_USAGE', 'a saved plan already names its nodes: --node/--selector cannot be combined with PLAN');
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch((e) => Promise.reject(new EdgectlError('EDGECTL_USAGE', `cannot read ${file}: ${e.message}`)));
  // A saved plan ships exactly its bytes: no renewal (plan said what was due).
  return { ...(await openSavedPlan(deps, text, file, o.fleet, o.local)), states: undefined, hopRenewals: [] as HopRenewal[], dirtyOnlyByHopRenewal: false };
}

async function planNow(deps: FleetDeps, o: ApplyFleetOptions) {
  const { planFleet } = await import('../plan/index.js');
  // One connection per node for the whole run: plan's state read and connection are apply's.
  const planned = await planFleet(deps, { ...o, diff: false, keepConnections: true, renewHops: 'apply' });
  return { plan: planned.plan, bundles: bundlesOf(planned), connector: planned.connector, model: planned.model, states: planned.states, hopRenewals: planned.hopRenewals, dirtyOnlyByHopRenewal: planned.dirtyOnlyByHopRenewal };
}
