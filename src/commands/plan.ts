import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json, tableOf } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';

export default class Plan extends EdgectlCommand {
  static override summary = 'Show what apply would change on each node';
  static override description = `Renders the fleet, reads every target node's current release concurrently (over SSH through its
relays, or locally with --local) and prints one row per node: role, how it is reached, whether it
answered, current → desired release, files added/changed/removed.

Each TLS app's certificate is listed on stderr with its days to expiry (under "certificates" with
--json), with a warning under 14 days, when expired, or for an ACME app with no certificate yet.

--diff adds unified diffs of the nginx files and a Kong diff by entity (secrets redacted by their
position in the structure). --out saves the plan with the bytes it would send (mode 0600); \`edgectl
apply plan.json\` then applies exactly that plan.

Exit status: 0 no changes (or changes, without --detailed-exitcode), 2 changes (with
--detailed-exitcode), 1 error or an unreachable node (unless --skip-unreachable).`;
  static override examples = [
    '<%= config.bin %> plan --fleet fleet.example --local /tmp/edge',
    '<%= config.bin %> plan --selector region=north --diff',
    '<%= config.bin %> plan --out plan.json --detailed-exitcode',
  ];
  static override flags = {
    ...targetFlags,
    rev: Flags.string({ summary: 'Plan the fleet as of this git revision' }),
    diff: Flags.boolean({ summary: 'Show unified diffs of nginx files and Kong changes by entity' }),
    json: Flags.boolean({ summary: 'Print the plan as JSON (without file bytes)' }),
    out: Flags.string({ char: 'o', summary: 'Save the plan (with the bytes to send) for `edgectl apply FILE`' }),
    'detailed-exitcode': Flags.boolean({ summary: 'Exit 2 when there are changes' }),
    'skip-unreachable': Flags.boolean({ summary: 'Unreachable nodes do not make the exit status 1' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Plan);
    const { planFleet } = await import('../lib/plan/index.js');
    const { planView, serialisePlan } = await import('../lib/plan/file.js');
    const view = await import('../lib/output/plan-table.js');
    const { planDiffText } = await import('../lib/output/plan-diff.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const planned = await planFleet(deps, { ...target, rev: flags.rev, diff: flags.diff });
    await planned.connector.close();
    const { plan } = planned;
    if (flags.out) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(flags.out, serialisePlan(plan, planned.blobs, planned.sealed), { mode: 0o600 });
    }
    const { certExpiries, expiryLines } = await import('../lib/acme/expiry.js');
    const certificates = await certExpiries(planned.model.apps, planned.readExtra);
    const hop = planned.hopRenewals.length ? { hopCertificates: planned.hopRenewals } : {};
    if (flags.json) this.out(json({ ...planView(plan), certificates, ...hop }));
    else {
      const c = colorsFor(process.stdout);
      this.out(tableOf(view.planTable(plan, c)));
      if (flags.diff) this.out(planDiffText(plan, c));
      this.out(view.planSummaryLine(plan) + (flags.out ? `; saved to ${flags.out}` : ''));
    }
    // Days to expiry on stderr (stdout is the plan itself); the same under "certificates" in --json.
    const expiry = expiryLines(certificates);
    if (!flags.json && expiry.lines.length) this.err(`certificates (days to expiry):\n${expiry.lines.join('\n')}`);
    for (const w of expiry.warnings) this.err(`warning ${w}`);
    const { expiresText } = await import('../lib/tls-hop/apply-renew.js');
    for (const r of planned.hopRenewals) if (r.outcome === 'due') this.err(`hop certificate of ${r.node} ${expiresText(r.daysLeft)}: apply renews it (same key, written to ${r.cert})`);
    for (const n of plan.nodes.filter((x) => !x.reachable)) this.err(`unreachable: ${n.node}: ${n.error ?? n.reason}`);
    if (plan.summary.unreachable > 0 && !flags['skip-unreachable']) return this.setExit(1);
    this.setExit(flags['detailed-exitcode'] && plan.summary.changes > 0 ? 2 : 0);
  }
}
