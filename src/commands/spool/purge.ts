import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { json, table } from '../../cli/output.js';
import { adminTarget, spoolFlags } from './status.js';

export default class SpoolPurge extends EdgectlCommand {
  static override summary = "Delete waiting messages from a node's spool (asks first) and say what was removed";
  static override description = `Without --tenant/--topic every queue is purged. Asks for confirmation on a terminal; --yes is required
otherwise. Purged messages are counted in /status and /metrics (edgectl_spool_purged_total).
Exit status: 0 purged (or nothing to purge), 1 not confirmed or the agent could not be reached.`;
  static override examples = ['<%= config.bin %> spool purge --node bj-edge-01 --tenant acme --topic debug', '<%= config.bin %> spool purge --admin http://127.0.0.1:8481 --tenant acme --yes --json'];
  static override flags = { ...spoolFlags, yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(SpoolPurge);
    const { withAdmin, spoolPurge, spoolStatus } = await import('../../lib/spool/client.js');
    const { ensureConfirmed } = await import('../../cli/confirm.js');
    await withAdmin(adminTarget(flags), async (api) => {
      const what = { tenant: flags.tenant, topic: flags.topic };
      const scope = `${flags.tenant ?? 'every tenant'}/${flags.topic ?? 'every topic'}`;
      await ensureConfirmed({
        yes: flags.yes,
        offTerminal: 'purge deletes messages: pass --yes when not on a terminal',
        ask: async () => `Delete ${(await spoolStatus(api, what)).queues.reduce((a, q) => a + q.depth, 0)} waiting messages of ${scope} on ${api.where}?`,
      });
      const r = await spoolPurge(api, what);
      if (flags.json) return this.out(json(r));
      if (r.removed.length === 0) return this.out('nothing to purge');
      this.out(table(['tenant', 'topic', 'removed', 'bytes'], r.removed.map((x) => [x.tenant, x.topic, x.count, x.bytes])));
    });
  }
}
