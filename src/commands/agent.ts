import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';

export default class AgentCommand extends EdgectlCommand {
  static override summary = 'Run the on-node agent: HTTPQ device API, durable spool, forwarding (edge, relay) or sink delivery (hub)';
  static override description = `Runs until SIGTERM/SIGINT. Reads agent.json (written by \`edgectl render\`) with --config; every
setting can also be given as a flag, which wins over the file. Logs JSON lines on stderr.
See docs/httpq.md for the API and a three-process example (edge -> relay -> hub).

Exit status: 0 after a clean stop, 1 when the configuration is invalid or the sockets/store cannot be opened.`;
  static override examples = [
    '<%= config.bin %> agent --config /etc/edgectl/agent.json',
    '<%= config.bin %> agent --role hub --node hub1 --listen 127.0.0.1:21030 --admin 127.0.0.1:21031 --data /tmp/hub --sink nats://127.0.0.1:4222',
  ];
  static override flags = {
    config: Flags.string({ char: 'c', summary: 'agent.json to run from (flags override its fields)' }),
    node: Flags.string({ summary: 'Node name (used in message ids)' }),
    role: Flags.string({ summary: 'Role of this agent', options: ['edge', 'relay', 'hub'] }),
    listen: Flags.string({ summary: 'Device and hop API address HOST:PORT' }),
    admin: Flags.string({ summary: 'Admin API address HOST:PORT (a loopback address only)' }),
    'admin-token-file': Flags.string({ summary: 'Admin API token file, created 0600 if missing (default DATA/admin-token)' }),
    data: Flags.string({ summary: 'Spool directory (LevelDB lives in DATA/spool)' }),
    upstream: Flags.string({ summary: 'Next hop …/v1/forward URL; repeat in failover order', multiple: true }),
    sink: Flags.string({ summary: 'Hub sink: file:PATH | http(s)://URL | nats://HOST:PORT[?stream=&prefix=&duplicateWindow=]' }),
    'credential-file': Flags.string({ summary: 'File holding this node\'s bearer credential for /v1/forward' }),
    'accept-forward': Flags.string({ summary: 'NODE:SHA256[:BEHIND,...]: a node allowed to POST /v1/forward here, the sha256 of its credential, and the nodes whose messages it passes on (repeatable; none: nobody may)', multiple: true }),
    'forward-inflight-bytes': Flags.integer({ summary: 'Most bytes of /v1/forward bodies held at once; more is answered 503 (default 32 MiB; a larger body is taken alone)' }),
    token: Flags.string({ summary: 'TENANT:SHA256 of a device token (repeatable; declares the tenant)', multiple: true }),
    topic: Flags.string({ summary: 'TENANT/TOPIC[:reject|:drop-oldest][:ttl=SECONDS] (repeatable)', multiple: true }),
    'spool-bytes': Flags.integer({ summary: 'Spool quota per tenant declared by flags (bytes, default 1 GiB)' }),
    'max-message-bytes': Flags.integer({ summary: 'Largest single message (bytes)' }),
    'request-timeout-ms': Flags.integer({ summary: 'Time a client has to send its whole request (default 30000)' }),
    'heartbeat-seconds': Flags.integer({ summary: 'Interval of the agent\'s own heartbeat messages (0 = off)' }),
    'max-batch-bytes': Flags.integer({ summary: 'Largest NDJSON batch body (bytes)' }),
    'max-batch-messages': Flags.integer({ summary: 'Most lines in one NDJSON batch' }),
    'forward-batch-messages': Flags.integer({ summary: 'Most messages per forwarded batch (default 1000)' }),
    'forward-batch-bytes': Flags.integer({ summary: 'Most bytes per forwarded batch (default 4 MiB)' }),
    'dedupe-window': Flags.integer({ summary: 'Message ids remembered for dedupe at this hop (default 1000000)' }),
    root: Flags.string({ summary: 'Node root (<root>/current, <root>/good): reset-to-work at boot before the agent starts' }),
    'nginx-binary': Flags.string({ summary: 'nginx binary that reset-to-work starts or reloads', default: '/usr/sbin/nginx' }),
    'log-level': Flags.string({ summary: 'Minimum log level', options: ['debug', 'info', 'warn', 'error'], default: 'info' }),
  };

  async run(): Promise<void> {
    const { flags: f } = await this.parse(AgentCommand);
    const { jsonLogger } = await import('../lib/logger.js');
    const log = jsonLogger((line) => process.stderr.write(line), f['log-level'] as 'info');
    if (f.root) {
      // Reset-to-work: a reboot alone brings the node back to its last good release, before the
      // agent reads a config that may belong to a release an apply left half switched.
      const { resetToWork } = await import('../lib/reset/index.js');
      const r = await resetToWork(f.root, { nginxBinary: f['nginx-binary'], logger: log });
      log.info('reset-to-work', { ...r });
    }
    const { resolveAgentConfig } = await import('../lib/agent/from-flags.js');
    const { Agent } = await import('../lib/agent/agent.js');
    const { EdgectlError, errorMessage } = await import('../lib/errors.js');
    const config = await resolveAgentConfig({
      config: f.config, node: f.node, role: f.role, listen: f.listen, admin: f.admin, adminTokenFile: f['admin-token-file'], data: f.data, upstream: f.upstream, sink: f.sink,
      credentialFile: f['credential-file'], acceptForward: f['accept-forward'], token: f.token, topic: f.topic, spoolBytes: f['spool-bytes'],
      maxMessageBytes: f['max-message-bytes'], requestTimeoutMs: f['request-timeout-ms'], heartbeatSeconds: f['heartbeat-seconds'],
      maxBatchBytes: f['max-batch-bytes'], maxBatchMessages: f['max-batch-messages'], forwardBatchMessages: f['forward-batch-messages'],
      forwardBatchBytes: f['forward-batch-bytes'], dedupeWindow: f['dedupe-window'], forwardInflightBytes: f['forward-inflight-bytes'],
    });
    const agent = await Agent.create(config, log);
    try {
      await agent.listen();
    } catch (err) {
      await agent.close();
      throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot listen: ${errorMessage(err)}`);
    }
    await new Promise<void>((resolve) => {
      const stop = () => { log.info('stopping', {}); void agent.close().then(resolve); };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  }
}
