import { releaseName, type Manifest } from '../bundle/manifest.js';
import { EdgectlError, errorMessage, isEdgectlError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Transport } from '../transport/types.js';
import { targetsFromRelease, checkHealth, type HealthTarget } from './health.js';
import { kongApply, kongValidate } from './kong.js';
import { layout, type Layout } from './layout.js';
import { acquireLock, keepLock, releaseLock, type LockHolder } from './lock.js';
import { errorLogSince, nginxReloadOrStart, nginxStop, nginxTest, waitForConfig, type NginxTarget } from './nginx.js';
import { NodeStepError, lingeringNote, outputOf } from './remote.js';
import { isClean, noTransfer, repairRelease, stageRelease, verifyRelease, type ReleaseBundle, type TransferStats } from './stage.js';
import { readState, type NodeState } from './state.js';
import { markGood, pruneReleases, recordRelease, removeCurrent, switchCurrent, clearIntent } from './switch.js';
import { readRelease } from './read.js';
import { activateOneShot, oneShotBlocker } from './oneshot.js';
import { agentBack, agentConf, reloadAgent } from './agent-steps.js';

export type Step = 'connect' | 'lock' | 'stale' | 'read' | 'upload' | 'verify' | 'validate' | 'switch' | 'reload' | 'config' | 'agent' | 'kong' | 'health' | 'good' | 'rollback' | 'done';
export type Outcome = 'applied' | 'unchanged' | 'failed' | 'rolled-back' | 'stale' | 'locked' | 'unreachable' | 'skipped';

export interface NodeResult {
  node: string;
  outcome: Outcome;
  /** The step that failed (or "done"). */
  step: Step;
  cause?: string;
  /** The error code of the cause, when it had one (EDGECTL_PLAN_STALE, EDGECTL_LOCKED, …): what a script matches on. */
  code?: ErrorCode;
  /** The node's own output for the failure (nginx -t, the error log, Kong's answer). */
  output?: string;
  from: string | null;
  to: string | null;
  transfer: TransferStats;
  reloads: number;
  /** The node's agent took the release's new agent.json (SIGHUP, then /healthz with its digest). */
  agentReloaded?: boolean;
  notes: string[];
  durationMs: number;
  /** Milliseconds spent in each step, in order (where a slow node spends its time). */
  stepsMs?: Partial<Record<Step, number>>;
  /**
   * How the release's bytes reached the node: "stream" (one tar inside the one-round-trip
   * activation), or the transport's file calls: "sftp", "exec" (no SFTP on the node), "local".
   */
  fileTransfer?: 'stream' | 'sftp' | 'exec' | 'local';
  /** Which activation served the node: the one-round-trip script, or the step-by-step path. */
  path?: 'oneshot' | 'steps';
  /** Request/response turns with the node for this activation (the plan's state read not included). */
  turns?: number;
}

export interface ActivateRequest {
  op: 'apply' | 'rollback';
  root: string;
  nginx: NginxTarget;
  kong: boolean;
  /** Release to activate: its manifest, and its bytes unless it is already on the node (rollback). */
  manifest: Manifest;
  bundle?: ReleaseBundle;
  /** Health targets; default: from the release's own app fragments. */
  health?: HealthTarget[];
  /** The release's app fragments (nginx/conf.d/) as read from the node, for its default health targets (rollback). */
  releaseFiles?: { path: string; data: Buffer }[];
  /** The node's state as a plan just read it over this run's connection: saves the read (and it decides the path). */
  state?: NodeState;
  /** Never the one-round-trip script: every step its own call (what fault-injection tests wrap). */
  stepByStep?: boolean;
  /** Refuse the node (stale plan) unless current is this release (null = none). Undefined: no check. */
  expectCurrent?: string | null;
  holder: LockHolder;
  onStep?: (step: Step) => void;
  logger: Logger;
  /** The wall clock for what is written on the node (intent, release records, lock expiry); default: the system's. */
  now?: () => Date;
}

const systemNow = () => new Date();

const name = (m: Manifest) => releaseName(m.digest);

/**
 * One node, one release: lock → stage (only missing files) → nginx -t (+ kong config parse) →
 * record intent + switch current → reload or start → check the new config is live → Kong →
 * health → good. Any failure after the switch switches back and reloads. Failures are results.
 */
export async function activateRelease(t: Transport, req: ActivateRequest): Promise<NodeResult> {
  const started = Date.now();
  const to = name(req.manifest);
  const steps: NonNullable<NodeResult['stepsMs']> = {};
  const res: NodeResult = { node: t.node, outcome: 'failed', step: 'lock', from: null, to, transfer: noTransfer(), reloads: 0, notes: [], durationMs: 0, stepsMs: steps };
  let stepStart = started;
  const lap = () => {
    const now = Date.now();
    steps[res.step] = (steps[res.step] ?? 0) + now - stepStart;
    stepStart = now;
  };
  const step = (s: Step) => {
    lap();
    res.step = s;
    req.onStep?.(s);
  };
  let lockLine: string | undefined;
  let keeper: { stop(): void } | undefined;
  try {
    // Step by step when asked: the state is read under the lock below, not here too.
    const observed = req.stepByStep ? undefined : (req.state ?? (step('read'), await readState(t, req.root)));
    if (observed && !oneShotBlocker(req, observed)) {
      res.path = 'oneshot';
      const ended = await activateOneShot(t, req, observed, res, step);
      if (ended.kind === 'done') return res;
      res.notes.push(`step by step: ${ended.why}`);
    }
    res.path = 'steps';
    step('lock');
    lockLine = await acquireLock(t, req.root, req.holder, (req.now ?? systemNow)().getTime());
    keeper = keepLock(t, req.root, lockLine);
    step('read');
    const state = await readState(t, req.root);
    res.from = state.current ?? null;
    // Already at the plan's target (a saved plan applied twice): not stale, and unchanged if it serves.
    if (req.expectCurrent !== undefined && (state.current ?? null) !== req.expectCurrent && state.current !== name(req.manifest)) {
      step('stale');
      throw new EdgectlError('EDGECTL_PLAN_STALE', `current release is ${state.current ?? 'none'}, the plan was made against ${req.expectCurrent ?? 'none'}`);
    }
    await activateLocked(t, req, state, res, step);
  } catch (e) {
    res.outcome = outcomeOf(e);
    res.cause = errorMessage(e);
    if (isEdgectlError(e)) res.code = e.code;
    res.output = outputOf(e);
  } finally {
    keeper?.stop();
    if (res.path === 'steps' && res.transfer.files > 0) res.fileTransfer = t.fileTransfer;
    if (lockLine) await releaseLock(t, req.root, lockLine).catch((e) => req.logger.warn('could not release the lock', { node: t.node, error: errorMessage(e) }));
    lap();
    res.durationMs = Date.now() - started;
  }
  return res;
}

async function activateLocked(t: Transport, req: ActivateRequest, state: NodeState, res: NodeResult, step: (s: Step) => void): Promise<void> {
  const l = layout(req.root);
  const to = name(req.manifest);
  // For history and rollback's choice; a record that cannot be written does not fail the activation.
  const record = (result: 'failed' | 'good', at?: string) =>
    recordRelease(t, req.root, to, { result, step: at, at: (req.now ?? systemNow)().toISOString(), commit: req.manifest.fleet.commit ?? null, digest: req.manifest.digest }).catch(() => {});
  const dir = l.release(to);
  const inPlace = state.current === to;
  let changed = !inPlace || !!state.intent || !!state.intentRaw;

  if (state.releases.some((r) => r.name === to)) {
    step('verify');
    const v = await verifyRelease(t, dir, req.manifest);
    if (!isClean(v)) {
      if (!req.bundle) throw new NodeStepError(`release ${to} on the node does not match its manifest`, describe(v));
      step('upload');
      await repairRelease(t, dir, req.bundle, v, res.transfer);
      res.notes.push(`repaired ${describe(v)}`);
      changed = true;
    }
  } else {
    if (!req.bundle) throw new NodeStepError(`release ${to} is not on the node`, `releases: ${state.releases.map((r) => r.name).join(', ') || 'none'}`);
    step('upload');
    const source = state.current && state.currentManifest ? { name: state.current, manifest: state.currentManifest } : undefined;
    await stageRelease(t, req.root, to, req.bundle, source, res.transfer);
  }
  if (!changed && state.nginxRunning) {
    const live = await waitForConfig(t, req.nginx, req.manifest.nginxConfigId, { timeoutMs: 1000 });
    if (live.ok) return void done(res, 'unchanged');
  }

  step('validate');
  await nginxTest(t, req.root, dir, req.nginx).catch(async (e) => {
    await record('failed', 'validate');
    throw e;
  });
  let hasKong = req.kong && !!req.manifest.files['kong/kong.yml'];
  if (hasKong) {
    const k = await kongValidate(t, `${dir}/kong/kong.yml`);
    if (k.note) res.notes.push(k.note);
    hasKong = k.outcome !== 'skipped';
  }

  step('switch');
  const prev = state.current !== to ? state.current : state.good !== to ? state.good : undefined;
  await switchCurrent(t, req.root, { op: req.op === 'rollback' ? 'rollback' : 'activate', from: state.current ?? null, to, by: req.holder.holder, at: (req.now ?? systemNow)().toISOString() });
  let kongApplied = false;
  let agentHupped = false;
  try {
    await goLive(t, req, res, step);
    // The node's agent (bootstrap's service) takes a changed agent.json on SIGHUP, gated on its
    // /healthz showing the new digest: the one-shot's `step agent` (agent-steps.ts).
    const newAgent = req.manifest.files['agent/agent.json'];
    const oldAgent = state.current && state.current !== to ? state.currentManifest?.files['agent/agent.json'] : undefined;
    if (newAgent && newAgent.sha256 !== oldAgent?.sha256) {
      const bytes = req.bundle?.files.find((f) => f.path === 'agent/agent.json')?.data ?? (await t.readFile(`${dir}/agent/agent.json`));
      if (bytes) {
        step('agent');
        agentHupped = true;
        res.agentReloaded = await reloadAgent(t, req.root, agentConf(bytes));
        agentHupped = res.agentReloaded;
      }
    }
    if (hasKong) {
      step('kong');
      const k = await kongApply(t, (await t.readFile(`${dir}/kong/kong.yml`)) ?? Buffer.alloc(0));
      kongApplied = k.outcome === 'applied';
      if (k.note) res.notes.push(k.note);
    }
    step('health');
    const targets = req.health ?? targetsFromRelease(req.releaseFiles ?? req.bundle?.files.filter((f) => f.path.startsWith('nginx/conf.d/')) ?? (await readRelease(t, dir, req.manifest, (p) => p.startsWith('nginx/conf.d/'))));
    const checked = await checkHealth(t, req.nginx, targets);
    for (const n of checked.filter((b) => b.note)) res.notes.push(`${n.app}: ${n.why}`);
    const bad = checked.filter((b) => !b.note);
    if (bad.length > 0) throw new NodeStepError(`health check failed for ${bad.map((b) => b.app).join(', ')}`, bad.map((b) => `${b.app}: ${b.why}`).join('\n'));
  } catch (e) {
    const failedStep = res.step;
    await record('failed', failedStep);
    res.cause = errorMessage(e);
    res.output = outputOf(e);
    await rollBack(t, { ...req, layout: l }, state, res, prev, kongApplied, agentHupped);
    res.step = failedStep;
    return;
  }
  step('good');
  await markGood(t, req.root, to);
  await record('good');
  await pruneReleases(t, req.root, [to, ...state.releases.map((r) => r.name).filter((n) => n !== to)], [to, prev]);
  step('done');
  res.outcome = 'applied';
}

/** Reload (or start), then insist on seeing the release's config id served: reload exits 0 even when nginx refuses. */
async function goLive(t: Transport, req: ActivateRequest, res: NodeResult, step: (s: Step) => void): Promise<void> {
  step('reload');
  const r = await nginxReloadOrStart(t, req.root, req.nginx);
  res.reloads++;
  step('config');
  const live = await waitForConfig(t, req.nginx, req.manifest.nginxConfigId, { oldWorkers: r.oldWorkers });
  if (live.lingering !== undefined) res.notes.push(lingeringNote(String(live.lingering)));
  if (!live.ok) {
    const log = await errorLogSince(t, req.root, r.errorLogOffset);
    throw new NodeStepError(`nginx ${r.action} but does not serve the new config (serving ${live.seen ?? 'nothing'}, expected ${req.manifest.nginxConfigId})`, log || '(nothing new in the error log)');
  }
}

async function rollBack(t: Transport, req: ActivateRequest & { layout: Layout }, state: NodeState, res: NodeResult, prev: string | undefined, kongApplied: boolean, agentHupped: boolean): Promise<void> {
  try {
    if (!prev && state.current) {
      res.notes.push('no earlier release on the node to roll back to');
      return;
    }
    if (!prev) {
      // The node had no release: it goes back to none, and the nginx we started stops.
      await nginxStop(t, req.root, req.nginx);
      await removeCurrent(t, req.root);
      res.outcome = 'rolled-back';
      res.notes.push('first release failed: node left without a release, nginx stopped');
      return;
    }
    await switchCurrent(t, req.root, { op: 'rollback', from: name(req.manifest), to: prev, by: req.holder.holder, at: (req.now ?? systemNow)().toISOString() });
    const r = await nginxReloadOrStart(t, req.root, req.nginx);
    res.reloads++;
    const prevManifest = prev === state.current ? state.currentManifest : undefined;
    if (prevManifest) {
      const live = await waitForConfig(t, req.nginx, prevManifest.nginxConfigId, { oldWorkers: r.oldWorkers });
      if (live.lingering !== undefined) res.notes.push(lingeringNote(String(live.lingering)));
      if (!live.ok) throw new NodeStepError(`previous release ${prev} is back in place but nginx does not serve it`, await errorLogSince(t, req.root, r.errorLogOffset));
    }
    if (kongApplied) {
      const old = await t.readFile(`${req.layout.release(prev)}/kong/kong.yml`);
      if (old) await kongApply(t, old);
    }
    if (agentHupped) {
      const note = await agentBack(t, req.root, await t.readFile(`${req.layout.release(prev)}/agent/agent.json`));
      if (note) res.notes.push(note);
    }
    await clearIntent(t, req.root);
    res.outcome = 'rolled-back';
    res.notes.push(`rolled back to ${prev}`);
  } catch (e) {
    res.outcome = 'failed';
    res.notes.push(`rollback to ${prev ?? 'none'} failed: ${errorMessage(e)}${outputOf(e) ? `\n${outputOf(e)}` : ''}`);
  }
}

function done(res: NodeResult, outcome: Outcome): NodeResult {
  res.outcome = outcome;
  if (outcome === 'unchanged') res.step = 'done';
  return res;
}

function describe(v: { modified: string[]; missing: string[]; extra: string[]; modeChanged: string[] }): string {
  const parts = [
    v.modified.length ? `modified: ${v.modified.join(', ')}` : '',
    v.missing.length ? `missing: ${v.missing.join(', ')}` : '',
    v.extra.length ? `extra: ${v.extra.join(', ')}` : '',
    v.modeChanged.length ? `mode changed: ${v.modeChanged.join(', ')}` : '',
  ];
  return parts.filter(Boolean).join('; ');
}

/** A refusal (another apply holds the lock, the plan is stale) is its own outcome; anything else failed. */
function outcomeOf(e: unknown): Outcome {
  const code = (e as { code?: string })?.code;
  return code === 'EDGECTL_LOCKED' ? 'locked' : code === 'EDGECTL_PLAN_STALE' ? 'stale' : 'failed';
}
