import { z } from 'zod';
import { RE } from '../fleet/values.js';

/** Body limits every hop agrees on, whatever each node's own settings (a hop must never refuse what the one below may send). */
export const MAX_MESSAGE_BYTES = 64 << 20;
export const MAX_FORWARD_BATCH_BYTES = 16 << 20;
export const MAX_FORWARD_BATCH_MESSAGES = 10_000;
/**
 * The largest POST /v1/forward body: a batch holds records up to its byte bound, or one record
 * alone when that record is larger (a message of up to MAX_MESSAGE_BYTES), plus its JSON header
 * (at most MAX_FORWARD_BATCH_MESSAGES rows of a few hundred bytes). Agents and nginx both use it.
 */
export const MAX_FORWARD_BODY_BYTES = Math.max(MAX_MESSAGE_BYTES, MAX_FORWARD_BATCH_BYTES) + (4 << 20);

/**
 * agent.json: the contract between `edgectl render` (which writes it into every bundle, at
 * agent/agent.json) and `edgectl agent` (which runs from it on the node). Every field can also
 * be given as a flag of `edgectl agent`.
 */
const hostPort = z.string().regex(/^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT');
const sha = z.string().regex(RE.sha256, 'must be 64 lowercase hex digits');

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

export const agentConfigSchema = z.object({
  format: z.literal('edgectl-agent/v1'),
  node: z.string().regex(RE.dnsLabel),
  role: z.enum(['edge', 'relay', 'hub']),
  /** Device API (/v1/q/) and hop API (/v1/forward); nginx on the node proxies to it. */
  listen: hostPort,
  /** Admin API (status, peek, purge) on loopback only; never proxied by nginx. */
  admin: hostPort,
  /** LevelDB spool directory (persistent, outside releases). */
  dataDir: z.string().min(1),
  maxMessageBytes: z.number().int().positive().max(MAX_MESSAGE_BYTES),
  /** Next hops towards the hub, in failover order (…/v1/forward URLs). Empty for the hub. */
  upstreams: z.array(z.string().url()),
  /** File on the node holding this node's bearer credential for /v1/forward (never in git). */
  credentialFile: z.string().optional(),
  /** sha256 of credentials allowed to POST /v1/forward here; empty = any (development only). */
  acceptForward: z.array(sha).default([]),
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
  /** FastCGI apps the agent supervises (reset-to-work): socket path and command to run. */
  fastcgi: z.array(z.object({ app: z.string(), socket: z.string(), root: z.string() }).strict()).default([]),
}).strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export type AgentTenant = z.infer<typeof agentTenantSchema>;
export type AgentTopic = z.infer<typeof agentTopicSchema>;

/** The largest NDJSON batch an agent takes when agent.json does not say (nginx's /v1/q/ limit too). */
export const defaultMaxBatchBytes = (maxMessageBytes: number) => Math.max(maxMessageBytes, 8 << 20);

/**
 * The admin API listens on the agent's listen host, one port up: render writes it into
 * agent.json and `edgectl spool --node` finds it the same way. Undefined when no port is left.
 */
export function agentAdminAddress(listen: string): { host: string; port: number } | undefined {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1)) + 1;
  if (!Number.isInteger(port) || port > 65535) return undefined;
  return { host: listen.slice(0, i), port };
}
