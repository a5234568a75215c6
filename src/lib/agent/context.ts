import { createHash } from 'node:crypto';
import type { AgentConfig, AgentTenant, AgentTopic } from '../bundle/agent-json.js';
import { DEFAULT_FORWARD_INFLIGHT_BYTES, defaultMaxBatchBytes, MAX_FORWARD_BODY_BYTES } from '../limits.js';
import type { Logger } from '../logger.js';
import type { Spool } from './store/spool.js';
import { AgentStats } from './stats.js';
import type { NodeRuntime } from './node-runtime.js';
import type { TunnelStatus } from './tunnel/tunnel.js';
import type { ServerCertStatus } from '../tls-hop/hop-tls.js';

export interface TenantRuntime {
  name: string;
  spoolBytes: number;
  topics: Map<string, AgentTopic>;
  rate?: { perSecond: number; tokens: number; last: number };
}

export interface Limits {
  maxMessageBytes: number;
  maxBatchBytes: number;
  maxBatchMessages: number;
  maxForwardBytes: number;
}

/** A node allowed to forward here (agent.json acceptForward): its name, and the id origins it may carry. */
export interface Sender {
  node: string;
  /** The sha256 of its credential, as bytes (compared in constant time). */
  hash: Buffer;
  /** Node names its messages' ids may start with: its own, and those of the nodes behind it. */
  origins: Set<string>;
}

/**
 * Bytes of /v1/forward bodies being read or stored right now, against the hop's bound. A body
 * larger than the bound is taken when nothing else is in flight, so no batch a sender may send
 * is refused forever: at most max(bound, the largest body) is held at once.
 */
export class Budget {
  used = 0;
  constructor(readonly max: number) {}

  take(n: number): boolean {
    if (this.used > 0 && this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

/** Everything the HTTP handlers, forwarder and maintenance share. Built once per agent. */
export interface AgentContext {
  config: AgentConfig;
  spool: Spool;
  stats: AgentStats;
  log: Logger;
  tenants: Map<string, TenantRuntime>;
  tenantsByHash: Map<string, TenantRuntime>;
  /** Tokens already found valid (bounded): a device sends the same token on every request. */
  knownTokens: Map<string, TenantRuntime>;
  /** Senders by the hex sha256 of their credential. */
  senders: Map<string, Sender>;
  forwardBudget: Budget;
  /** sha256 of the admin API's bearer token; undefined (nothing accepted) until the agent has loaded it. */
  adminTokenHash?: Buffer;
  limits: Limits;
  /** Wakes the forwarder after new data was stored. */
  notify: () => void;
  /** The agent process's config digest, FastCGI apps and last reload (serve.ts); absent in tests that build a bare context. */
  node?: NodeRuntime;
  /** The reverse tunnel's state (tunnel: reverse nodes only): for /status and the heartbeat. */
  tunnel?: () => TunnelStatus;
  /** The TLS forward listener's certificate (forwardTls nodes only): for /status and the heartbeat. */
  forwardTls?: () => ServerCertStatus;
}

export const sha256hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

export function buildContext(config: AgentConfig, spool: Spool, log: Logger, notify: () => void = () => {}): AgentContext {
  const tenants = new Map<string, TenantRuntime>();
  const tenantsByHash = new Map<string, TenantRuntime>();
  for (const t of config.tenants as AgentTenant[]) {
    const rt: TenantRuntime = {
      name: t.name,
      spoolBytes: t.spoolBytes,
      topics: new Map(t.topics.map((x) => [x.name, x])),
      rate: t.requestsPerSecond ? { perSecond: t.requestsPerSecond, tokens: t.requestsPerSecond, last: Date.now() } : undefined,
    };
    tenants.set(t.name, rt);
    for (const h of t.tokens) tenantsByHash.set(h, rt);
  }
  return {
    config, spool, log, tenants, tenantsByHash, notify,
    knownTokens: new Map(),
    stats: new AgentStats(),
    senders: new Map(config.acceptForward.map((a) => [a.sha256, { node: a.node, hash: Buffer.from(a.sha256, 'hex'), origins: new Set([a.node, ...a.behind]) }])),
    forwardBudget: new Budget(config.forwardInflightBytes ?? DEFAULT_FORWARD_INFLIGHT_BYTES),
    limits: {
      maxMessageBytes: config.maxMessageBytes,
      maxBatchBytes: config.maxBatchBytes ?? defaultMaxBatchBytes(config.maxMessageBytes),
      maxBatchMessages: config.maxBatchMessages ?? 10_000,
      maxForwardBytes: MAX_FORWARD_BODY_BYTES,
    },
  };
}

const KNOWN_TOKENS = 1024;

/**
 * The tenant whose token hashes include sha256(token). Hashing every request cost about 5% of
 * single-message intake, so tokens that matched are remembered; a token that did not match is
 * never remembered (guessing always pays the hash) and the memory is bounded.
 */
export function tenantForToken(ctx: Pick<AgentContext, 'tenantsByHash' | 'knownTokens'>, token: string): TenantRuntime | undefined {
  const known = ctx.knownTokens.get(token);
  if (known) return known;
  const tenant = ctx.tenantsByHash.get(sha256hex(token));
  if (tenant) {
    if (ctx.knownTokens.size >= KNOWN_TOKENS) ctx.knownTokens.clear();
    ctx.knownTokens.set(token, tenant);
  }
  return tenant;
}

/** Token bucket per tenant: false means answer 429. */
export function takeToken(t: TenantRuntime, now = Date.now()): boolean {
  const r = t.rate;
  if (!r) return true;
  r.tokens = Math.min(r.perSecond, r.tokens + ((now - r.last) / 1000) * r.perSecond);
  r.last = now;
  if (r.tokens < 1) return false;
  r.tokens -= 1;
  return true;
}
