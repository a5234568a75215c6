import { activateRelease, type ActivateRequest, type NodeResult, type Outcome } from '../release/activate.js';
import { makeHolder, type LockHolder } from '../release/lock.js';
import { noTransfer, type ReleaseBundle } from '../release/stage.js';
import type { NodeState } from '../release/state.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Connector } from '../transport/connect.js';
import type { Transport } from '../transport/types.js';
import type { Plan, PlanNode } from '../plan/types.js';
import { runNodes } from '../nodes/run-nodes.js';
import { batches, resolveCount, type RolloutOptions } from './rollout.js';
import { isSuccess } from '../release/outcome.js';
import { APPLY_REPORT_FORMAT, type ApplyEvent, type ApplyReport } from './types.js';

export interface ApplyDeps {
  connector: Connector;
  logger: Logger;
  now: () => Date;
  onEvent?: (e: ApplyEvent) => void;
  /** Aborting stops starting new nodes; nodes in flight finish or roll back. */
  signal?: AbortSignal;
  holder?: LockHolder;
  /** Node states read by the plan just made over this connector (absent for a saved plan: each node is read again). */
  states?: Map<string, NodeState>;
  /** Every step its own call instead of the one-round-trip script (tests that inject faults between steps). */
  stepByStep?: boolean;
}

const CHANGING = new Set(['create', 'update', 'finish']);

/**
 * Applies exactly the plan: the nodes it changes, with the bytes it carries, each refused if its
 * current release is no longer the one the plan saw. Rollout: canary, batches, failure budget.
 */
export async function applyPlan(plan: Plan, bundles: Map<string, ReleaseBundle>, deps: ApplyDeps, o: RolloutOptions): Promise<ApplyReport> {
  const startedAt = deps.now().toISOString();
  const holder = deps.holder ?? makeHolder('edgectl apply', undefined, deps.now().getTime());
  const results = new Map<string, NodeResult>();
  const emit = (e: Omit<ApplyEvent, 'time'>) => deps.onEvent?.({ time: deps.now().toISOString(), ...e });
  const targets = plan.nodes.filter((n) => CHANGING.has(n.action));
  const budget = resolveCount(o.maxFailures, targets.length, '--max-failures');
  let failures = 0;
  let stopped: string | undefined;

  for (const n of plan.nodes) {
    if (n.action === 'none') results.set(n.node, blank(n, 'unchanged'));
    if (n.action === 'unreachable') results.set(n.node, { ...blank(n, 'unreachable'), step: 'connect', cause: n.error ?? n.reason });
  }
  const skip = (n: PlanNode): NodeResult | undefined => {
    if (!stopped && deps.signal?.aborted) stopped = 'interrupted: no new nodes started';
    if (!stopped && failures > budget) stopped = `failures (${failures}) exceeded --max-failures ${o.maxFailures}`;
    if (stopped) return { ...blank(n, 'skipped'), cause: `not started: ${stopped}` };
    emit({ node: n.node, kind: 'start', message: `${n.current.release ?? 'none'} → ${n.desired.release}` });
    emit({ node: n.node, kind: 'step', step: 'connect' });
    return undefined;
  };
  for (const batch of batches(targets, o)) {
    await runNodes(deps.connector, batch, {
      concurrency: o.concurrency,
      node: (n) => n.node,
      before: skip,
      run: (t, n, connectMs) => activateNode(t, n, connectMs, { bundle: bundles.get(n.node), state: deps.states?.get(n.node), stepByStep: deps.stepByStep, now: deps.now, holder, logger: deps.logger, onStep: (step) => emit({ node: n.node, kind: 'step', step }) }),
      unreachable: (n, e): NodeResult => ({ ...blank(n, 'unreachable'), step: 'connect', cause: errorMessage(e) }),
      onResult: (n, r) => {
        // A skipped node counts too; it only happens once the budget is spent, so the stop stands.
        if (!isSuccess(r.outcome)) failures++;
        results.set(n.node, r);
        emit({ node: n.node, kind: 'result', outcome: r.outcome, ...(r.outcome === 'skipped' ? { message: stopped } : { step: r.step, message: r.cause }) });
      },
    });
  }
  const nodes = plan.nodes.map((n) => results.get(n.node)!);
  const summary = { applied: 0, unchanged: 0, failed: 0, 'rolled-back': 0, stale: 0, locked: 0, unreachable: 0, skipped: 0, uploadedFiles: 0, uploadedBytes: 0, reloads: 0 } as ApplyReport['summary'];
  for (const r of nodes) {
    summary[r.outcome]++;
    summary.uploadedFiles += r.transfer.files;
    summary.uploadedBytes += r.transfer.bytes;
    summary.reloads += r.reloads;
  }
  return { format: APPLY_REPORT_FORMAT, startedAt, finishedAt: deps.now().toISOString(), interrupted: !!deps.signal?.aborted, ...(stopped ? { stopped } : {}), nodes, summary };
}

/** One node of the plan, its transport open: the release it carries, activated (failures are results). */
async function activateNode(t: Transport, n: PlanNode, connectMs: number, o: Pick<ActivateRequest, 'bundle' | 'state' | 'stepByStep' | 'now' | 'holder' | 'logger' | 'onStep'>): Promise<NodeResult> {
  const r = await activateRelease(t, {
    op: 'apply',
    root: n.root,
    nginx: n.nginx,
    kong: n.kong,
    manifest: n.manifest,
    health: n.health,
    expectCurrent: n.current.release,
    ...o,
  });
  r.stepsMs = { connect: connectMs, ...r.stepsMs };
  r.durationMs += connectMs;
  if (t.turns !== undefined) r.turns = t.turns;
  return r;
}

function blank(n: PlanNode, outcome: Outcome): NodeResult {
  return { node: n.node, outcome, step: 'done', from: n.current.release, to: n.desired.release, transfer: noTransfer(), reloads: 0, notes: [], durationMs: 0 };
}
