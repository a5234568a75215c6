import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { allSucceeded, colorsFor, json, resultsText, tableOf } from '../cli/output.js';
import { fleetDeps, rolloutFlags, rolloutOverrides, targetFlags } from '../cli/fleet-flags.js';
import type { ApplyEvent } from '../lib/apply/types.js';
import type { DriftReport } from '../lib/drift/index.js';

export default class Drift extends EdgectlCommand {
  static override summary = 'Compare every node with git: outdated, modified on node, or clean (for cron)';
  static override description = `Compares each node's current release with the fleet's desired one, and checks the files of current
against its own manifest on the node (sha256 and mode), so a hand edit shows as "modified on node"
rather than "outdated". Stable, non-interactive output.

--fix applies to the drifted nodes only (a modified node gets its release repaired in place,
validated, reloaded and health-checked like any apply), rolled out like apply: --canary, --batch
and --max-failures, else the fleet's spec.rollout. Like apply it asks first, listing the drifted
nodes (--yes off a terminal), and refuses a fleet with uncommitted changes unless --allow-dirty.

Exit status: 0 clean, 2 drift found (with --fix: found and every drifted node fixed), 1 error, an
unreachable node, or a fix that failed.`;
  static override examples = ['<%= config.bin %> drift --fleet fleet.example --local /tmp/edge', '<%= config.bin %> drift --json', '<%= config.bin %> drift --fix'];
  static override flags = {
    ...targetFlags,
    json: Flags.boolean({ summary: 'Print the drift report (and the fix report) as JSON' }),
    fix: Flags.boolean({ summary: 'Apply to the drifted nodes only (asks first, like apply)' }),
    yes: Flags.boolean({ char: 'y', summary: 'With --fix: do not ask (required when not on a terminal)' }),
    'allow-dirty': Flags.boolean({ summary: 'With --fix: fix from a fleet with uncommitted changes' }),
    ...rolloutFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Drift);
    const { hasDrift } = await import('../lib/drift/fix.js');
    const { driftAndFix } = await import('../cli/drift-fix.js');
    const { driftSummaryLine, driftTable } = await import('../lib/output/drift-table.js');
    const { applyEventLine, applySummaryLine } = await import('../lib/output/apply-table.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const fixing = flags.fix ? { rollout: rolloutOverrides(flags), onEvent: (e: ApplyEvent) => e.kind === 'result' && this.err(applyEventLine(e)) } : undefined;
    let shown = false;
    const show = (r: DriftReport) => !flags.json && !shown && (shown = true) && this.out(`${tableOf(driftTable(r, colorsFor(process.stdout)))}\n${driftSummaryLine(r)}`);
    const { report, fix } = await driftAndFix(deps, target, { fix: fixing, yes: flags.yes, allowDirty: flags['allow-dirty'], show });
    if (flags.json) this.out(json(fix ? { ...report, fix } : report));
    else {
      show(report);
      if (fix) this.out(resultsText(fix.nodes, `fix: ${applySummaryLine(fix)}`));
    }
    const failed = report.summary.unreachable > 0 || (fix && !allSucceeded(fix.nodes));
    this.setExit(failed ? 1 : hasDrift(report) ? 2 : 0);
  }
}
