import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json, table } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';
import { EdgectlError } from '../lib/errors.js';

export default class Apply extends EdgectlCommand {
  static override summary = 'Ship the fleet (or a saved plan) to its nodes, with atomic releases that roll back by themselves';
  static override description = `For each node that changes: lock it, upload only the files it lacks, validate on the node (nginx -t
against the staged release; kong config parse where Kong is installed), switch current atomically,
reload or start nginx and check that it serves the new config, load Kong's config, health-check
every app, then mark the release good. Any failure switches back and reloads; the node's own error
output is reported. Rollout: --canary nodes first, then --batch at a time, no new node once
failures exceed --max-failures. Ctrl-C stops starting new nodes and lets those in flight finish.

With a PLAN file (from \`edgectl plan --out\`) exactly that plan is applied; a node whose current
release changed since is refused as stale. Without one, the fleet is planned now.

Exit status: 0 every node applied or unchanged, 1 any node failed, was refused, skipped or unreachable.`;
  static override examples = [
    '<%= config.bin %> apply --fleet fleet.example --local /tmp/edge --yes',
    '<%= config.bin %> apply plan.json --yes',
    '<%= config.bin %> apply --selector region=north --canary 1 --batch 25% --max-failures 0',
  ];
  static override args = { plan: Args.string({ description: 'A plan saved with `edgectl plan --out`' }) };
  static override flags = {
    ...targetFlags,
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask (required when not on a terminal)' }),
    canary: Flags.integer({ summary: 'Nodes to apply to first, before any batch (default: fleet rollout.canary, else 0)', min: 0 }),
    batch: Flags.string({ summary: 'Nodes per batch after the canaries: N or P% (default: fleet rollout.batchSize, else all)' }),
    'max-failures': Flags.string({ summary: 'Stop starting nodes once failures exceed N or P% (default: fleet rollout.maxFailures, else 0)' }),
    json: Flags.boolean({ summary: 'Print the apply report as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Apply);
    if (args.plan && (flags.node?.length || flags.selector?.length)) throw new EdgectlError('EDGECTL_USAGE', 'a saved plan already names its nodes: --node/--selector cannot be combined with PLAN');
    const { planFleet } = await import('../lib/plan/index.js');
    const { applyPlan, bundlesOf, openSavedPlan } = await import('../lib/apply/index.js');
    const planView = await import('../lib/output/plan-table.js');
    const view = await import('../lib/output/apply-table.js');
    const { confirm, interruptible } = await import('../cli/confirm.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const ce = colorsFor(process.stderr);

    let opened;
    if (args.plan) {
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(args.plan, 'utf8').catch((e) => Promise.reject(new EdgectlError('EDGECTL_USAGE', `cannot read ${args.plan}: ${e.message}`)));
      opened = await openSavedPlan(deps, text, args.plan, flags.fleet, target.local);
    } else {
      const planned = await planFleet(deps, { ...target, diff: false });
      opened = { plan: planned.plan, bundles: bundlesOf(planned), connector: planned.connector, model: planned.model };
    }
    const { plan, bundles, connector, model } = opened;
    try {
      const rollout = this.rollout(flags, model.fleet.spec.rollout);
      if (plan.summary.changes > 0 && !flags.yes) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) throw new EdgectlError('EDGECTL_NOT_CONFIRMED', `${plan.summary.changes} node(s) would change and this is not a terminal`);
        const t = planView.planTable(plan, ce);
        this.err(table(t.head, t.rows, process.stderr));
        if (!(await confirm(`Apply to ${plan.summary.changes} node(s)?`))) throw new EdgectlError('EDGECTL_NOT_CONFIRMED', 'not confirmed: nothing was changed');
      }
      const tty = !!process.stderr.isTTY;
      const inFlight = new Map<string, string>();
      const { signal, dispose } = interruptible(() => this.err(ce.yellow('interrupted: no new nodes will be started; nodes in flight finish or roll back')), (s) => this.err(s));
      const report = await applyPlan(plan, bundles, {
        connector,
        logger: deps.logger,
        now: deps.now,
        signal,
        onEvent: (e) => {
          if (!tty) return void (e.kind !== 'step' && this.err(view.applyEventLine(e)));
          if (e.kind === 'result') {
            inFlight.delete(e.node);
            process.stderr.write(`\r\x1b[K${e.node} ${view.outcomeText(e.outcome!, ce)}${e.message ? ce.dim(`: ${e.message.slice(0, 120)}`) : ''}\n`);
          } else inFlight.set(e.node, e.step ?? 'start');
          const live = [...inFlight].slice(0, 4).map(([n, s]) => `${n}:${s}`).join(' ');
          process.stderr.write(`\r\x1b[K${ce.dim(`in flight ${inFlight.size}: ${live}`)}`);
        },
      }, rollout);
      dispose();
      if (tty) process.stderr.write('\r\x1b[K');
      if (flags.json) this.out(json(report));
      else {
        const c = colorsFor(process.stdout);
        const changed = report.nodes.filter((r) => r.outcome !== 'unchanged');
        if (changed.length > 0) {
          const t = view.applyTable(changed, c);
          this.out(table(t.head, t.rows));
          const f = view.applyFailures(changed, c);
          if (f) this.out(f);
        }
        this.out(view.applySummaryLine(report));
      }
      const { isSuccess } = await import('../lib/release/outcome.js');
      const ok = report.nodes.every((r) => isSuccess(r.outcome));
      this.setExit(ok ? 0 : 1);
    } finally {
      await connector.close();
    }
  }

  /** Flags win over the fleet's spec.rollout (from the fleet already loaded for the plan). */
  private rollout(flags: { canary?: number; batch?: string; 'max-failures'?: string; concurrency: number }, spec: { canary?: number; batchSize?: number | string; maxFailures?: number | string } = {}) {
    return {
      canary: flags.canary ?? spec.canary ?? 0,
      batch: flags.batch ?? spec.batchSize ?? '100%',
      maxFailures: flags['max-failures'] ?? spec.maxFailures ?? 0,
      concurrency: flags.concurrency,
    };
  }
}
