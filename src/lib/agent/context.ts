import { createHash } from 'node:crypto';
import type { AgentConfig, AgentTenant, AgentTopic } from './config.js';
import type { Logger } from '../logger.js';
import type { Spool } from './store/queue.js';
import { AgentStats } from './stats.js';

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

/** Everything the HTTP handlers, forwarder and maintenance share. Built once per agent. */
export interface AgentContext {
  config: AgentConfig;
  spool: Spool;
  stats: AgentStats;
  log: Logger;
  tenants: Map<string, TenantRuntime>;
  tenantsByHash: Map<string, TenantRuntime>;
  acceptForward: Set<string>;
  limits: Limits;
  /** Wakes the forwarder after new data was stored. */
  notify: () => void;
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
    stats: new AgentStats(),
    acceptForward: new Set(config.acceptForward),
    limits: {
      maxMessageBytes: config.maxMessageBytes,
      maxBatchBytes: config.maxBatchBytes ?? Math.max(config.maxMessageBytes, 8 << 20),
      maxBatchMessages: config.maxBatchMessages ?? 10_000,
      maxForwardBytes: 64 << 20,
    },
  };
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
