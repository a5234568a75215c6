import { agentConfigInput, agentFlags } from '../cli/agent-flags.js';
import { EdgectlCommand } from '../cli/base.js';

/** EDGECTL_RESET_RETRY_MS: the first retry of a failed reset-to-work (tests make it short). */
const retryMs = () => (/^\d{1,7}$/.test(process.env.EDGECTL_RESET_RETRY_MS ?? '') ? Number(process.env.EDGECTL_RESET_RETRY_MS) : undefined);

export default class AgentCommand extends EdgectlCommand {
  static override summary = 'Run the on-node agent: HTTPQ device API, durable spool, forwarding (edge, relay) or sink delivery (hub)';
  static override description = `Runs until SIGTERM/SIGINT. With --root: reset-to-work at start, then the agent runs from
<root>/current/agent/agent.json when there is one (unless --config), its FastCGI apps supervised,
<root>/run/agent.pid written, and SIGHUP re-reads the configuration (docs/bootstrap.md). Reads agent.json (written by \`edgectl render\`) with --config; every
setting can also be given as a flag, which wins over the file. Logs JSON lines on stderr.
See docs/httpq.md for the API and a three-process example (edge -> relay -> hub).

Exit status: 0 after a clean stop, 1 when the configuration is invalid or the sockets/store cannot be opened.`;
  static override examples = [
    '<%= config.bin %> agent --config /etc/edgectl/agent.json',
    '<%= config.bin %> agent --role hub --node hub1 --listen 127.0.0.1:21030 --admin 127.0.0.1:21031 --data /tmp/hub --sink nats://127.0.0.1:4222',
  ];
  static override flags = agentFlags;

  async run(): Promise<void> {
    const { flags: f } = await this.parse(AgentCommand);
    const { jsonLogger } = await import('../lib/logger.js');
    const log = jsonLogger((line) => process.stderr.write(line), f['log-level'] as 'info');
    const stopped = new Promise<void>((resolve) => (process.once('SIGTERM', resolve), process.once('SIGINT', resolve)));
    const { resolveAgentConfig } = await import('../lib/agent/from-flags.js');
    const input = agentConfigInput(f);
    if (f.root) {
      // Reset-to-work first (a reboot alone brings the node back to its last good release), then
      // the FastCGI apps and the agent; SIGHUP reloads; <root>/run/agent.pid names this process.
      // Like the bundled agent, it runs from the release's agent.json (flags override its fields);
      // without --config and before a first release, from the flags alone.
      const { configFileLoader, nodeConfigFile, runOnNode } = await import('../lib/bootstrap/on-node.js');
      const { access } = await import('node:fs/promises');
      const file = input.config ?? nodeConfigFile(f.root);
      const load = async () => (input.config || (await access(file).then(() => true, () => false)) ? configFileLoader(file, input)() : { config: await resolveAgentConfig(input), digest: null });
      await runOnNode({ root: f.root, nginxBinary: f['nginx-binary'], log, stopped, load, retryFirstMs: retryMs() });
      return;
    }
    const { serveAgent } = await import('../lib/agent/serve.js');
    await serveAgent(await resolveAgentConfig(input), log, stopped);
  }
}
