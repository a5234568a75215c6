import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json, table } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';

export default class Drift extends EdgectlCommand {
  static override summary = 'Compare every node with git: outdated, modified on node, or clean (for cron)';
  static override description = `Compares each node's current release with the fleet's desired one, and checks the files of current
against its own manifest on the node (sha256 and mode), so a hand edit shows as "modified on node"
rather than "outdated". Stable, non-interactive output.

--fix applies to the drifted nodes only (a modified node gets its release repaired in place,
validated, reloaded and health-checked like any apply).

Exit status: 0 clean, 2 drift found (with --fix: found and every drifted node fixed), 1 error, an
unreachable node, or a fix that failed.`;
  static override examples = ['<%= config.bin %> drift --fleet fleet.example --local /tmp/edge', '<%= config.bin %> drift --json', '<%= config.bin %> drift --fix'];
  static override flags = {
    ...targetFlags,
    json: Flags.boolean({ summary: 'Print the drift report (and the fix report) as JSON' }),
    fix: Flags.boolean({ summary: 'Apply to the drifted nodes only' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Drift);
    const { driftFleet, fixPlan, hasDrift } = await import('../lib/drift/index.js');
    const { applyPlan, bundlesOf } = await import('../lib/apply/index.js');
    const { driftTable } = await import('../lib/output/drift-table.js');
    const view = await import('../lib/output/apply-table.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const { report, planned } = await driftFleet(deps, target);
    try {
      const drift = hasDrift(report);
      const unreachable = report.summary.unreachable > 0;
      let fix;
      if (flags.fix && drift) {
        const p = fixPlan(planned, report);
        fix = await applyPlan(p.plan, bundlesOf(p), { connector: planned.connector, logger: deps.logger, now: deps.now, onEvent: (e) => e.kind === 'result' && this.err(view.applyEventLine(e)) }, { canary: 0, batch: '100%', maxFailures: '100%', concurrency: flags.concurrency });
      }
      if (flags.json) this.out(json(fix ? { ...report, fix } : report));
      else {
        const c = colorsFor(process.stdout);
        const t = driftTable(report, c);
        this.out(table(t.head, t.rows));
        const s = report.summary;
        this.out(`${report.nodes.length} node(s): ${s.clean} clean, ${s.outdated} outdated, ${s.modified} modified on node, ${s.missing} without a release, ${s.stopped} stopped, ${s.unreachable} unreachable`);
        if (fix) {
          const ft = view.applyTable(fix.nodes, c);
          this.out(table(ft.head, ft.rows));
          const f = view.applyFailures(fix.nodes, c);
          if (f) this.out(f);
          this.out(`fix: ${view.applySummaryLine(fix)}`);
        }
      }
      const { isSuccess } = await import('../lib/release/outcome.js');
      const fixFailed = fix?.nodes.some((r) => !isSuccess(r.outcome));
      this.setExit(unreachable || fixFailed ? 1 : drift ? 2 : 0);
    } finally {
      await planned.connector.close();
    }
  }
}
