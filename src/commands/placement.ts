import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { targetFlags } from '../cli/fleet-flags.js';
import { json, table } from '../cli/output.js';

export default class Placement extends EdgectlCommand {
  static override summary = 'Show which edge nodes run each app';
  static override description = `Runs the placement scheduler on the fleet: placement.nodes as listed; no replicas = every eligible edge
node (matching the selector); replicas = weighted rendezvous hashing by capacity.cpu, at most one replica
per spreadBy value while there are enough values. api apps only go to nodes with kong: true.

Exit status: 0 ok (a shortfall is shown, not an error; validate reports it), 1 invalid fleet or error.`;
  static override examples = ['<%= config.bin %> placement --fleet fleet.example', '<%= config.bin %> placement --json'];
  static override flags = {
    fleet: targetFlags.fleet,
    rev: Flags.string({ summary: 'Use the fleet as of this git revision' }),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Placement);
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { placeFleet } = await import('../lib/placement/index.js');
    const loaded = await loadFleet(flags.fleet, flags.rev);
    const p = placeFleet(loaded.model);
    if (flags.json) {
      this.out(json({ fleet: loaded.model.name, apps: p.apps, nodes: Object.fromEntries([...p.byNode].sort(([a], [b]) => (a < b ? -1 : 1))) }));
      return;
    }
    const wanted = (a: (typeof p.apps)[number]) => (a.mode === 'all' ? 'all' : String(a.wanted)) + (a.shortfall ? ` (${a.shortfall} short)` : '');
    this.out(table(['app', 'tenant', 'type', 'replicas', 'nodes'], p.apps.map((a) => [a.app, a.tenant, a.type, wanted(a), a.nodes.join(', ') || '-'])));
  }
}
