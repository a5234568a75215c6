import { EdgectlCommand } from '../../cli/base.js';
import { json, table } from '../../cli/output.js';
import { Flags, type Interfaces } from '@oclif/core';
import { targetFlags } from '../../cli/fleet-flags.js';

/** Shared by `edgectl spool status|peek|purge`: which agent to ask. */
export const spoolFlags = {
  node: Flags.string({ char: 'n', summary: 'Node whose agent to ask (through its SSH connection)' }),
  fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory (with --node)', default: '.' }),
  identity: Flags.string({ char: 'i', summary: 'SSH private key file (repeatable)', multiple: true, multipleNonGreedy: true }),
  admin: Flags.string({ summary: 'Admin API URL of a local agent instead of --node (e.g. http://127.0.0.1:8481)' }),
  'admin-token-file': Flags.string({ summary: 'With --admin: the agent\'s admin token file (DATA/admin-token); --node reads it on the node' }),
  local: targetFlags.local,
  'local-port-base': targetFlags['local-port-base'],
  'local-port-range': targetFlags['local-port-range'],
  'local-address': targetFlags['local-address'],
  tenant: Flags.string({ summary: 'Only this tenant' }),
  topic: Flags.string({ summary: 'Only this topic' }),
  json: Flags.boolean({ summary: 'Print JSON' }),
};

/** What `withAdmin` needs, from the spool flags. */
export const adminTarget = (f: Interfaces.InferredFlags<typeof spoolFlags>) => ({
  node: f.node, fleet: f.fleet, identity: f.identity, admin: f.admin, adminTokenFile: f['admin-token-file'],
  local: f.local ? { root: f.local, portBase: f['local-port-base'], portRange: f['local-port-range'], address: f['local-address'] } : undefined,
});

export default class SpoolStatus extends EdgectlCommand {
  static override summary = "Show a node's HTTPQ spool: depth, bytes, oldest age, drops per tenant and topic";
  static override description = `Asks the node's agent over its loopback admin API (through SSH with --node, or --admin URL for a
local agent, with --admin-token-file). Never opens the spool files. Exit status: 0 answered, 1 the agent could not be reached.`;
  static override examples = ['<%= config.bin %> spool status --node bj-edge-01', '<%= config.bin %> spool status --admin http://127.0.0.1:8481 --json'];
  static override flags = spoolFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(SpoolStatus);
    const { withAdmin, spoolStatus } = await import('../../lib/spool/client.js');
    await withAdmin(adminTarget(flags), async (api) => {
      const s = await spoolStatus(api, { tenant: flags.tenant, topic: flags.topic });
      if (flags.json) return this.out(json(s));
      this.out(`${s.node} (${s.role}) store ${s.store.state}; last forward ${s.forward.lastSuccessAt ?? 'never'}${s.forward.lastError ? `; last error ${s.forward.lastError.message}` : ''}`);
      if (s.store.quarantined.length > 0) this.err(`warning: ${s.store.quarantined.length} corrupt store(s) kept in quarantine: ${s.store.quarantined.join(', ')}`);
      this.out(table(['tenant', 'topic', 'depth', 'bytes', 'oldest (s)', 'dropped', 'expired', 'purged'],
        s.queues.map((q) => [q.tenant, q.topic, q.depth, q.bytes, q.oldestAgeSeconds === null ? '-' : q.oldestAgeSeconds.toFixed(1), q.dropped, q.expired, q.purged])));
    });
  }
}
