import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { allSucceeded, colorsFor, json, resultsText } from '../cli/output.js';
import { fleetDeps, rolloutFlags, rolloutOverrides, targetFlags } from '../cli/fleet-flags.js';

export default class Apply extends EdgectlCommand {
  static override summary = 'Ship the fleet (or a saved plan) to its nodes, with atomic releases that roll back by themselves';
  static override description = `For each node that changes: lock it, upload only the files it lacks, validate on the node (nginx -t
against the staged release; kong config parse where Kong is installed), switch current atomically,
reload or start nginx and check that it serves the new config, load Kong's config, health-check
every app, then mark the release good. Any failure switches back and reloads; the node's own error
output is reported. Rollout: --canary nodes first, then --batch at a time, no new node once
failures exceed --max-failures. Ctrl-C stops starting new nodes and lets those in flight finish.

With a PLAN file (from \`edgectl plan --out\`) exactly that plan is applied; a node whose current
release changed since is refused as stale. Without one, the fleet is planned now. A fleet (or plan)
with uncommitted changes is refused unless --allow-dirty. Answering no at the prompt changes
nothing and exits 0.

Exit status: 0 every node applied or unchanged, 1 any node failed, was refused, skipped or unreachable.`;
  static override examples = [
    '<%= config.bin %> apply --fleet fleet.example --local /tmp/edge --yes',
    '<%= config.bin %> apply plan.json --yes',
    '<%= config.bin %> apply --selector region=north --canary 1 --batch 25% --max-failures 0',
  ];
  static override args = { plan: Args.string({ description: 'A plan saved with `edgectl plan --out`' }) };
  static override flags = {
    ...targetFlags,
    ...rolloutFlags,
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask (required when not on a terminal)' }),
    'allow-dirty': Flags.boolean({ summary: 'Apply a fleet with uncommitted changes (its releases record the commit as COMMIT-dirty)' }),
    json: Flags.boolean({ summary: 'Print the apply report as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Apply);
    const { applyFleet } = await import('../lib/apply/fleet.js');
    const { applyProgress } = await import('../lib/output/apply-progress.js');
    const [{ applySummaryLine }, { dirtyNote }] = await Promise.all([import('../lib/output/apply-table.js'), import('../lib/output/plan-table.js')]);
    const [{ interruptible }, { confirmApply }] = await Promise.all([import('../cli/confirm.js'), import('../cli/confirm-apply.js')]);
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const ce = colorsFor(process.stderr);
    const progress = applyProgress((s) => process.stderr.write(s), { tty: !!process.stderr.isTTY, colors: ce });
    const stop = interruptible(() => this.err(ce.yellow('interrupted: no new nodes will be started; nodes in flight finish or roll back')), (s) => this.err(s));
    try {
      const { report, plan, hopRenewals } = await applyFleet(deps, {
        ...target, planFile: args.plan, rollout: rolloutOverrides(flags), signal: stop.signal, onEvent: progress.onEvent,
        confirm: async (plan, c) => (await confirmApply(plan, { yes: flags.yes, allowDirty: flags['allow-dirty'], colors: ce, dirtyOnlyByHopRenewal: c.dirtyOnlyByHopRenewal }), stop.arm()),
      });
      progress.end();
      for (const r of hopRenewals) if (r.outcome === 'renewed') this.err(`renewed ${r.cert} (${r.node}, until ${r.renewedUntil}): in this apply's release of ${r.node}; review and commit it`);
      if (flags.json) this.out(json(hopRenewals.length ? { ...report, hopCertificates: hopRenewals } : report));
      else this.out(resultsText(report.nodes.filter((r) => r.outcome !== 'unchanged'), applySummaryLine(report) + dirtyNote(plan)));
      this.setExit(allSucceeded(report.nodes) ? 0 : 1);
    } finally {
      stop.dispose();
    }
  }
}
