import { isIP } from 'node:net';
import { z } from 'zod';
import { RE } from '../fleet/values.js';
import { unbracket } from '../fleet/ip.js';
import { FASTCGI_MAX_PROCESSES, fastcgiCommandProblems } from '../fleet/fastcgi-command.js';
import { caProblem } from '../tls-hop/hop-tls.js';
import { MAX_FORWARD_BATCH_BYTES, MAX_FORWARD_BATCH_MESSAGES, MAX_MESSAGE_BYTES } from '../limits.js';

/**
 * A loopback address literal: 127.0.0.0/8 in dotted-quad form, or ::1. Names (even `localhost`)
 * and other spellings are not: what an address resolves to is not the config's to decide.
 */
export function isLoopbackHost(host: string): boolean {
  const h = unbracket(host);
  if (isIP(h) === 4) return h.startsWith('127.');
  return isIP(h) === 6 && new URL(`http://[${h}]/`).hostname === '[::1]';
}

/**
 * agent.json: the contract between `edgectl render` (which writes it into every bundle, at
 * agent/agent.json, beside manifest.json) and `edgectl agent` (which runs from it on the node).
 * Every field can also be given as a flag of `edgectl agent`.
 */
const hostPort = z.string().regex(/^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT');
const sha = z.string().regex(RE.sha256, 'must be 64 lowercase hex digits');
const loopbackHostPort = hostPort.refine((hp) => isLoopbackHost(hp.slice(0, hp.lastIndexOf(':'))), 'must be a loopback address (127.x.x.x or [::1]): the admin API is never on the network');

/**
 * A node allowed to POST /v1/forward here: the sha256 of the credential it presents, and the
 * nodes whose messages it passes on (their uplink runs through it). It may send messages whose
 * ids start with its own name or one of those; dedupe here is kept per sender.
 */
export const acceptForwardSchema = z.object({
  node: z.string().regex(RE.dnsLabel, 'must be a node name'),
  sha256: sha,
  behind: z.array(z.string().regex(RE.dnsLabel, 'must be a node name')).default([]),
}).strict();

/**
 * tunnel: reverse: the one SSH connection the agent keeps from the node to the last relay of its
 * via chain, asking the relay to listen on its 127.0.0.1:remotePort and to hand each connection
 * there to `target` (the node's own sshd). The relay's host key must be one of `hostKeys`.
 */
export const agentTunnelSchema = z.object({
  /** The relay's fleet name, for messages and /status. */
  relay: z.string().regex(RE.dnsLabel, 'must be a node name'),
  /** Where the node dials the relay's sshd. */
  host: z.string().regex(/^(?:[A-Za-z0-9.-]+|[0-9a-fA-F:]+)$/, 'must be a hostname or an IP address'),
  port: z.number().int().min(1).max(65535),
  user: z.string().regex(RE.sshUser, 'must be a unix user name'),
  /** The relay's pinned host keys (`type base64`); any other key is refused. Empty: nothing to check against, so no tunnel. */
  hostKeys: z.array(z.string().regex(RE.hostKey, 'must be "<type> <base64>"')),
  /** The port on the relay's 127.0.0.1 where the tunnel lands (the fleet's tunnelPort). */
  remotePort: z.number().int().min(1).max(65535),
  /** The node's private key (born on the node, never in git). */
  keyFile: z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path of letters, digits, ".", "_", "-", "/"'),
  /** Where tunnelled connections go: the node's sshd, on loopback. */
  target: hostPort.refine((hp) => isLoopbackHost(hp.slice(0, hp.lastIndexOf(':'))), 'must be a loopback address (127.x.x.x or [::1]): the tunnel reaches the node\'s own sshd only'),
  /** Keepalive every this many ms; three unanswered: the connection is dead (default 10000). */
  keepaliveIntervalMs: z.number().int().min(100).max(600_000).optional(),
  /** Reconnect backoff: full jitter over base·2^attempt, capped (defaults 500 and 30000). */
  backoffBaseMs: z.number().int().min(1).max(60_000).optional(),
  backoffCapMs: z.number().int().min(1).max(3_600_000).optional(),
}).strict();

export const agentTopicSchema = z.object({
  name: z.string().regex(RE.topic),
  whenFull: z.enum(['reject', 'drop-oldest']).default('reject'),
  /** Seconds a message may wait before it is dropped (counted); absent = forever. */
  ttlSeconds: z.number().int().positive().optional(),
}).strict();

export const agentTenantSchema = z.object({
  name: z.string().regex(RE.dnsLabel),
  /** sha256 hex of device tokens accepted for this tenant. */
  tokens: z.array(sha),
  topics: z.array(agentTopicSchema),
  spoolBytes: z.number().int().positive(),
  requestsPerSecond: z.number().int().positive().optional(),
}).strict();

const absPath = z.string().regex(RE.absPath, 'must be an absolute path of letters, digits, ".", "_", "-" and "/"').refine((p) => !p.split('/').some((x) => x === '..' || x === '.'), 'must not contain "." or ".." segments');

/**
 * One FastCGI app: nginx fastcgi_pass-es to `socket`; the agent listens there and runs
 * `processes` copies of `command` in `root` (the app's directory under current/). `digest`
 * covers the app's payload files, command and processes: what changed is what gets restarted.
 * No command: nothing is started (nginx answers 502), as before the field existed.
 */
export const fastcgiAppSchema = z.object({
  app: z.string().regex(/^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}$/, 'must be TENANT.APP'),
  // sun_path holds 108 bytes with its NUL: a longer path cannot be bound at all.
  socket: absPath.refine((p) => p.endsWith('.sock') && Buffer.byteLength(p) <= 107, 'must end in .sock and be at most 107 bytes (a unix socket path)'),
  root: absPath,
  command: z.array(z.string()).superRefine((argv, c) => {
    for (const p of fastcgiCommandProblems(argv)) c.addIssue({ code: z.ZodIssueCode.custom, path: p.index >= 0 ? [p.index] : [], message: p.message });
  }).optional(),
  processes: z.number().int().min(1).max(FASTCGI_MAX_PROCESSES).default(1),
  digest: sha.optional(),
}).strict();

export type FastcgiApp = z.infer<typeof fastcgiAppSchema>;

const absPathOf = () => z.string().regex(RE.absPath, 'must be an absolute path');

export const agentConfigSchema = z.object({
  format: z.literal('edgectl-agent/v1'),
  node: z.string().regex(RE.dnsLabel),
  role: z.enum(['edge', 'relay', 'hub']),
  /** Device API (/v1/q/) and hop API (/v1/forward); nginx on the node proxies to it. */
  listen: hostPort,
  /** Admin API (status, peek, purge) on loopback only; never proxied by nginx. */
  admin: loopbackHostPort,
  /** File holding the admin API's bearer token (created 0600 by the agent if missing; default <dataDir>/admin-token). */
  adminTokenFile: z.string().min(1).optional(),
  /** LevelDB spool directory (persistent, outside releases). */
  dataDir: z.string().min(1),
  maxMessageBytes: z.number().int().positive().max(MAX_MESSAGE_BYTES),
  /** Next hops towards the hub, in failover order (…/v1/forward URLs). Empty for the hub. */
  upstreams: z.array(z.string().url()),
  /** File on the node holding this node's bearer credential for /v1/forward (never in git). */
  credentialFile: z.string().optional(),
  /** The nodes allowed to POST /v1/forward here. Empty: nobody (an edge; or a hop nobody forwards to yet). */
  acceptForward: z.array(acceptForwardSchema).default([]).superRefine((list, c) => {
    const nodes = new Set<string>();
    const hashes = new Set<string>();
    list.forEach((a, i) => {
      if (nodes.has(a.node)) c.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'node'], message: `node ${a.node} is listed twice` });
      if (hashes.has(a.sha256)) c.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'sha256'], message: 'this credential hash is listed twice' });
      nodes.add(a.node);
      hashes.add(a.sha256);
    });
  }),
  /**
   * TLS on the hop API (relays and the hub): a second listener serving /v1/forward (and /healthz)
   * over HTTPS with the hop certificate the fleet CA issued (docs/tls.md, Uplink hops). A changed
   * certificate file is served to new connections within seconds, without a restart.
   */
  forwardTls: z.object({
    listen: hostPort,
    certFile: absPathOf(),
    keyFile: absPathOf(),
  }).strict().optional(),
  /**
   * The fleet CA (one PEM certificate) that the upstreams' certificates must chain to; no other
   * root is trusted, and every upstream must then be https:// (a hop never falls back to plain
   * HTTP). Without it an https:// upstream is checked against the system's roots.
   */
  upstreamCa: z.string().max(16384).superRefine((pem, c) => {
    const p = caProblem(pem);
    if (p) c.addIssue({ code: z.ZodIssueCode.custom, message: `the fleet CA ${p}` });
  }).optional(),
  /** Most bytes of /v1/forward bodies held at once (default 32 MiB; one larger body is taken alone); past it 503 before reading. */
  forwardInflightBytes: z.number().int().positive().optional(),
  /** Hub only: file:PATH | http(s)://… | nats://HOST:PORT */
  sink: z.string().optional(),
  tenants: z.array(agentTenantSchema),
  /** Largest NDJSON batch body in bytes (default max(maxMessageBytes, 8 MiB)). */
  maxBatchBytes: z.number().int().positive().optional(),
  /** Most messages in one NDJSON batch (default 10000). */
  maxBatchMessages: z.number().int().positive().optional(),
  /** A device must send its whole request within this many ms, else 408 (default 30000). */
  requestTimeoutMs: z.number().int().positive().optional(),
  /** Forwarding batch bounds (defaults 1000 messages, 4 MiB). */
  forwardBatchMessages: z.number().int().positive().max(MAX_FORWARD_BATCH_MESSAGES).optional(),
  forwardBatchBytes: z.number().int().positive().max(MAX_FORWARD_BATCH_BYTES).optional(),
  /** Seconds between the agent's own heartbeat messages (priority over device data; default 30, 0 = off). */
  heartbeatSeconds: z.number().int().nonnegative().optional(),
  /** Message ids remembered for dedupe at this hop (default 1,000,000; kept on disk). */
  dedupeWindow: z.number().int().positive().optional(),
  /**
   * The node's layout as metering and the heartbeat read it (docs/httpq.md "Metering and heartbeats"):
   * the node root (release links), nginx's JSON access log and pid file (both outside releases).
   * Absent: no metering, and a heartbeat without release and nginx fields.
   */
  metering: z.object({
    root: z.string().regex(RE.absPath, 'must be an absolute path'),
    accessLog: z.string().regex(RE.absPath, 'must be an absolute path').optional(),
    nginxPidFile: z.string().regex(RE.absPath, 'must be an absolute path').optional(),
    /** Past this size the agent rotates the access log (default 64 MiB; one rotated file is kept). */
    rotateBytes: z.number().int().min(4096).optional(),
    /** Seconds after its end before a minute is closed (default 5). */
    graceSeconds: z.number().int().min(0).max(300).optional(),
    /** Meter HTTPQ intake per tenant and topic (default true). */
    httpq: z.boolean().optional(),
  }).strict().optional(),
  /** FastCGI apps the agent supervises when it runs with --root (src/lib/agent/fastcgi/). */
  fastcgi: z.array(fastcgiAppSchema).default([]).superRefine((list, c) => {
    const seen = new Set<string>();
    list.forEach((a, i) => {
      if (seen.has(a.app) || seen.has(a.socket)) c.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'app'], message: `app ${a.app} (or its socket) is listed twice` });
      seen.add(a.app).add(a.socket);
    });
  }),
  /** tunnel: reverse nodes only. */
  tunnel: agentTunnelSchema.optional(),
}).strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AgentTunnel = z.infer<typeof agentTunnelSchema>;
export type AcceptForward = z.infer<typeof acceptForwardSchema>;

export type AgentTenant = z.infer<typeof agentTenantSchema>;
export type AgentTopic = z.infer<typeof agentTopicSchema>;

/**
 * The admin API listens one port above the agent's listen port, on the listen host when that is
 * a loopback address and on 127.0.0.1 otherwise (a node whose agent listens on the network keeps
 * its admin API off it). Render writes it into agent.json and `edgectl spool --node` finds it the
 * same way. Undefined when no port is left.
 */
export function agentAdminAddress(listen: string): { host: string; port: number } | undefined {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1)) + 1;
  if (!Number.isInteger(port) || port > 65535) return undefined;
  const host = listen.slice(0, i);
  return { host: isLoopbackHost(host) ? host : '127.0.0.1', port };
}

/** The agent's state directory under a node root, as render writes it (dataDir). */
export const agentDataDir = (root: string) => `${root.replace(/\/+$/, '')}/spool`;

/** Where the node's tunnel key lives under a node root, as render writes it (keyFile). */
export const tunnelKeyFile = (root: string) => `${root.replace(/\/+$/, '')}/secrets/tunnel-key`;

/** Where the agent keeps its admin token when agent.json does not say: in its state directory. */
export const agentAdminTokenFile = (dataDir: string) => `${dataDir.replace(/\/+$/, '')}/admin-token`;
