import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json, table } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';
import { EdgectlError } from '../lib/errors.js';

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
    if (!flags.node?.length && !flags.selector?.length) throw new EdgectlError('EDGECTL_USAGE', 'rollback needs --node or --selector (it never rolls back a whole fleet by default)');
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { localModel } = await import('../lib/nodes/local-mode.js');
    const { selectNodes } = await import('../lib/nodes/select.js');
    const { rollbackNodes } = await import('../lib/release/rollback.js');
    const view = await import('../lib/output/apply-table.js');
    const { confirm } = await import('../cli/confirm.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const loaded = await loadFleet(flags.fleet);
    const model = target.local ? localModel(loaded.model, target.local) : loaded.model;
    const nodes = selectNodes(model.nodes, { nodes: flags.node, selector: target.selector }).map((n) => n.name);
    if (nodes.length === 0) throw new EdgectlError('EDGECTL_USAGE', 'no node matches --node/--selector');
    if (!flags.yes) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) throw new EdgectlError('EDGECTL_NOT_CONFIRMED', `would roll back ${nodes.length} node(s) and this is not a terminal`);
      if (!(await confirm(`Roll back ${nodes.join(', ')}${flags.to ? ` to ${flags.to}` : ''}?`))) throw new EdgectlError('EDGECTL_NOT_CONFIRMED', 'not confirmed: nothing was changed');
    }
    const connector = deps.connect(model);
    try {
      const results = await rollbackNodes(connector, model, nodes, { to: flags.to, logger: deps.logger, concurrency: flags.concurrency, onResult: (r) => this.err(`${r.node} ${r.outcome}${r.cause ? `: ${r.cause}` : ''}`) });
      if (flags.json) this.out(json({ format: 'edgectl-rollback/v1', nodes: results }));
      else {
        const c = colorsFor(process.stdout);
        const t = view.applyTable(results, c);
        this.out(table(t.head, t.rows));
        const f = view.applyFailures(results, c);
        if (f) this.out(f);
      }
      const { isSuccess } = await import('../lib/release/outcome.js');
      this.setExit(results.every((r) => isSuccess(r.outcome)) ? 0 : 1);
    } finally {
      await connector.close();
    }
  }
}
