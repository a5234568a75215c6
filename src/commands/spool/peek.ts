import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { json, table } from '../../cli/output.js';
import { EdgectlError } from '../../lib/errors.js';
import { adminTarget, spoolFlags } from './status.js';

export default class SpoolPeek extends EdgectlCommand {
  static override summary = 'Show the oldest waiting messages of one tenant/topic without removing them';
  static override description = 'Exit status: 0 answered, 1 the agent could not be reached or the queue was not named.';
  static override examples = ['<%= config.bin %> spool peek --node bj-edge-01 --tenant acme --topic events --limit 5'];
  static override flags = { ...spoolFlags, limit: Flags.integer({ summary: 'How many messages (1-1000)', default: 10 }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(SpoolPeek);
    const { tenant, topic } = flags;
    if (!tenant || !topic) throw new EdgectlError('EDGECTL_USAGE', 'peek needs --tenant and --topic');
    const { withAdmin, spoolPeek } = await import('../../lib/spool/client.js');
    await withAdmin(adminTarget(flags), async (api) => {
      const r = await spoolPeek(api, tenant, topic, flags.limit);
      if (flags.json) return this.out(json(r));
      const preview = (b: string) => (b.length > 60 ? `${b.slice(0, 57)}...` : b).replace(/[\x00-\x1f\x7f]/g, '.');
      this.out(table(['id', 'time', 'type', 'bytes', 'body'], r.messages.map((m) => [m.id, m.time, m.contentType, m.bytes, m.encoding === 'utf8' ? preview(m.body) : `(base64) ${preview(m.body)}`])));
    });
  }
}
