import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { allSucceeded, json, resultsText } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';

export default class Rollback extends EdgectlCommand {
  static override summary = 'Switch nodes back to an earlier release that is still on them';
  static override description = `Activates an earlier release kept on each node (by default the one before current), validating and
health-checking it like apply. It needs only the fleet's node list (addresses, relays, roots) and
the releases on the nodes: no git server, no render, so it works in an incident. Afterwards
\`plan\` and \`drift\` show those nodes as behind git, which is the truth.

--to takes a release (its digest or name prefix, 7+ hex digits) or the fleet commit it was made from.

Exit status: 0 every node rolled back, 1 otherwise.`;
  static override examples = ['<%= config.bin %> rollback --node bj-edge-01 --yes', '<%= config.bin %> rollback --selector region=north --to 3f2a9c1 --yes'];
  static override flags = {
    ...targetFlags,
    to: Flags.string({ summary: 'Release digest/name prefix or fleet commit to go back to (default: the release before current)' }),
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask (required when not on a terminal)' }),
    json: Flags.boolean({ summary: 'Print the results as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Rollback);
    const { rollbackFleet } = await import('../lib/apply/rollback-fleet.js');
    const { ensureConfirmed } = await import('../cli/confirm.js');
    const { ROLLBACK_LABELS: said } = await import('../lib/output/apply-table.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const results = await rollbackFleet(deps, {
      ...target,
      to: flags.to,
      confirm: (nodes) => ensureConfirmed({ yes: flags.yes, offTerminal: `would roll back ${nodes.length} node(s) and this is not a terminal`, ask: () => `Roll back ${nodes.join(', ')}${flags.to ? ` to ${flags.to}` : ''}?` }),
      onResult: (r) => this.err(`${r.node} ${said[r.outcome] ?? r.outcome}${r.cause ? `: ${r.cause}` : ''}`),
    });
    if (flags.json) this.out(json({ format: 'edgectl-rollback/v1', nodes: results }));
    else this.out(resultsText(results, undefined, said));
    this.setExit(allSucceeded(results) ? 0 : 1);
  }
}
