import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { stderrLogger } from '../cli/logger.js';
import { colorsFor, json, table } from '../cli/output.js';

export default class Trust extends EdgectlCommand {
  static override summary = "Record nodes' SSH host keys in the fleet's known_hosts";
  static override description = `Connects to each NODE (through its relays, which must be trusted already or be listed too), shows the
SHA256 fingerprint of its host key and records it in <fleet>/known_hosts. Check the fingerprint out of
band (on the node: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). A node whose key differs from one
already recorded (pinned in spec.ssh.hostKey, in the fleet's or your known_hosts) is refused: remove the
old entry first if the node was really reinstalled.

Exit status: 0 every node's key is trusted, 1 any node failed.`;
  static override examples = ['<%= config.bin %> trust bj-relay-01 bj-edge-01 --fleet fleet', '<%= config.bin %> trust bj-edge-02 --json'];
  static override strict = false;
  static override args = { node: Args.string({ description: 'Node names', required: true }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    identity: Flags.string({ char: 'i', summary: 'SSH private key file (repeatable)', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Trust);
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { trustNodes } = await import('../lib/trust/index.js');
    const { model } = await loadFleet(flags.fleet);
    const results = await trustNodes({ model, fleetRoot: flags.fleet, nodes: argv as string[], identity: flags.identity, logger: stderrLogger() });
    const failed = results.some((r) => r.status === 'failed');
    this.setExit(failed ? 1 : 0);
    if (flags.json) return this.out(json({ nodes: results }));
    const c = colorsFor(process.stdout);
    const status = (s: string) => (s === 'recorded' ? c.green(s) : s === 'failed' ? c.red(s) : s);
    this.out(table(['node', 'fingerprint', 'status', 'where'], results.map((r) => [r.node, r.fingerprint ?? '-', status(r.status), r.error ? `${r.error.message} [${r.error.code}]` : (r.source ?? '-')])));
    for (const r of results) if (r.warning) this.err(`warning: ${r.node}: key ${r.status}, but the connection then failed: ${r.warning}`);
  }
}
