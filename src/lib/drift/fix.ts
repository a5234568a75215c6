import { bundlesOf } from '../apply/index.js';
import { rolloutOf, type RolloutOverrides } from '../apply/rollout.js';
import { applyPlan } from '../apply/run.js';
import type { ApplyEvent, ApplyReport } from '../apply/types.js';
import type { FleetDeps, TargetOptions } from '../plan/index.js';
import { driftFleet, fixPlan, hasDrift, type DriftReport } from './index.js';

export { hasDrift };

export interface DriftCheckOptions extends TargetOptions {
  /** Apply to the drifted nodes, rolled out like apply: the operator's values, else the fleet's spec.rollout. */
  fix?: {
    rollout: RolloutOverrides;
    onEvent?: (e: ApplyEvent) => void;
    /** Asked with the report before any drifted node is changed: throws to stop with nothing changed. */
    confirm?: (report: DriftReport) => Promise<void>;
  };
}

/** Drift of every target node, and with `fix` the fix of the drifted ones. The connector lives exactly as long as this call. */
export async function checkDrift(deps: FleetDeps, o: DriftCheckOptions): Promise<{ report: DriftReport; fix?: ApplyReport }> {
  const { report, planned } = await driftFleet(deps, o, { keepConnections: !!o.fix });
  try {
    if (!o.fix || !hasDrift(report)) return { report };
    await o.fix.confirm?.(report);
    const p = fixPlan(planned, report);
    const rollout = rolloutOf(o.fix.rollout, planned.model.fleet.spec.rollout, o.concurrency);
    const fix = await applyPlan(p.plan, bundlesOf(p), { connector: planned.connector, logger: deps.logger, now: deps.now, onEvent: o.fix.onEvent, states: planned.states }, rollout);
    return { report, fix };
  } finally {
    await planned.connector.close();
  }
}
