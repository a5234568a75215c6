import { Flags, type Interfaces } from '@oclif/core';
import type { AgentFlags } from '../lib/agent/from-flags.js';

/** The flags of `edgectl agent`: every agent.json setting, which a flag overrides. */
export const agentFlags = {
  config: Flags.string({ char: 'c', summary: 'agent.json to run from (flags override its fields)' }),
  node: Flags.string({ summary: 'Node name (used in message ids)' }),
  role: Flags.string({ summary: 'Role of this agent', options: ['edge', 'relay', 'hub'] }),
  listen: Flags.string({ summary: 'Device and hop API address HOST:PORT' }),
  admin: Flags.string({ summary: 'Admin API address HOST:PORT (a loopback address only)' }),
  'admin-token-file': Flags.string({ summary: 'Admin API token file, created 0600 if missing (default DATA/admin-token)' }),
  data: Flags.string({ summary: 'Spool directory (LevelDB lives in DATA/spool)' }),
  upstream: Flags.string({ summary: 'Next hop …/v1/forward URL; repeat in failover order', multiple: true, multipleNonGreedy: true }),
  sink: Flags.string({ summary: 'Hub sink: file:PATH | http(s)://URL | nats://HOST:PORT[?stream=&prefix=&duplicateWindow=] | postgres://USER@HOST:PORT/DATABASE[?sslmode=] (password: PGPASSWORD)' }),
  'credential-file': Flags.string({ summary: 'File holding this node\'s bearer credential for /v1/forward' }),
  'accept-forward': Flags.string({ summary: 'NODE:SHA256[:BEHIND,...]: a node allowed to POST /v1/forward here, the sha256 of its credential, and the nodes whose messages it passes on (repeatable; none: nobody may)', multiple: true, multipleNonGreedy: true }),
  'forward-inflight-bytes': Flags.integer({ summary: 'Most bytes of /v1/forward bodies held at once; more is answered 503 (default 32 MiB; a larger body is taken alone)' }),
  'forward-tls-listen': Flags.string({ summary: 'TLS forward listener HOST:PORT (relays, the hub): /v1/forward over HTTPS with --forward-tls-cert and --forward-tls-key' }),
  'forward-tls-cert': Flags.string({ summary: 'The hop certificate (PEM) the TLS forward listener serves, issued by the fleet CA' }),
  'forward-tls-key': Flags.string({ summary: 'Its private key (PEM, mode 0600)' }),
  'upstream-ca': Flags.string({ summary: 'The fleet CA (PEM file) the upstreams must chain to: no other root is trusted, and every upstream must be https://' }),
  token: Flags.string({ summary: 'TENANT:SHA256 of a device token (repeatable; declares the tenant)', multiple: true, multipleNonGreedy: true }),
  topic: Flags.string({ summary: 'TENANT/TOPIC[:reject|:drop-oldest][:ttl=SECONDS] (repeatable)', multiple: true, multipleNonGreedy: true }),
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

/** The flags, as the core's names for them. */
export function agentConfigInput(f: Interfaces.InferredFlags<typeof agentFlags>): AgentFlags {
  return {
    config: f.config, node: f.node, role: f.role, listen: f.listen, admin: f.admin, adminTokenFile: f['admin-token-file'], data: f.data, upstream: f.upstream, sink: f.sink,
    credentialFile: f['credential-file'], acceptForward: f['accept-forward'], token: f.token, topic: f.topic, spoolBytes: f['spool-bytes'],
    maxMessageBytes: f['max-message-bytes'], requestTimeoutMs: f['request-timeout-ms'], heartbeatSeconds: f['heartbeat-seconds'],
    maxBatchBytes: f['max-batch-bytes'], maxBatchMessages: f['max-batch-messages'], forwardBatchMessages: f['forward-batch-messages'],
    forwardBatchBytes: f['forward-batch-bytes'], dedupeWindow: f['dedupe-window'], forwardInflightBytes: f['forward-inflight-bytes'],
    forwardTlsListen: f['forward-tls-listen'], forwardTlsCert: f['forward-tls-cert'], forwardTlsKey: f['forward-tls-key'], upstreamCaFile: f['upstream-ca'],
  };
}
