import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { json, tableOf } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';

export default class History extends EdgectlCommand {
  static override summary = 'List the releases kept on nodes, newest first: what rollback --to can take';
  static override description = `For each node: its releases newest first, with the fleet commit each was made from, when it was
last activated, its result (good: passed its health check; failed: refused by nginx -t, the reload,
the config check or the health check, and at which; staged: never activated; unknown: made before
edgectl recorded results) and which is current and good. One round trip per node.

Exit status: 0 every node answered, 1 otherwise.`;
  static override examples = ['<%= config.bin %> history bj-edge-01', '<%= config.bin %> history --selector region=north --json'];
  static override strict = false;
  static override args = { node: Args.string({ description: 'Node names', required: false }) };
  static override flags = {
    ...targetFlags,
    json: Flags.boolean({ summary: 'Print the releases as JSON' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(History);
    const { historyFleet } = await import('../lib/apply/history-fleet.js');
    const { historyTable } = await import('../lib/output/history-table.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const nodes = await historyFleet(deps, { ...target, nodes: [...(target.nodes ?? []), ...(argv as string[])] });
    this.out(flags.json ? json({ format: 'edgectl-history/v1', nodes }) : tableOf(historyTable(nodes)));
    this.setExit(nodes.every((n) => n.reachable) ? 0 : 1);
  }
}
