import { createHash, timingSafeEqual } from 'node:crypto';
import type { AgentContext, Sender } from '../context.js';
import type { IncomingItem } from '../store/spool.js';
import { HEARTBEAT_TOPIC, INTERNAL_TENANT } from '../forward/wire.js';
import { USAGE_TOPIC } from '../telemetry.js';

/**
 * Who may forward what to this hop. A sender is a node in acceptForward, found by the sha256 of
 * the credential it presents; what it sends must be its own messages or those of the nodes
 * behind it, for tenants and topics this hop's config declares.
 */

/** The sender whose credential this is, or undefined. */
export function senderFor(ctx: Pick<AgentContext, 'senders'>, credential: string): Sender | undefined {
  const digest = createHash('sha256').update(credential).digest();
  // Looked up by the hash, never by the secret, so lookup timing says nothing about the
  // credential; the final comparison is constant-time all the same.
  const s = ctx.senders.get(digest.toString('hex'));
  return s && timingSafeEqual(s.hash, digest) ? s : undefined;
}

/** The node a message id (`<node>:<epoch>:<seq>`) or a run's id prefix comes from. */
export function originOf(item: IncomingItem): string {
  const id = 'bodies' in item ? item.idPrefix : item.id;
  const i = id.indexOf(':');
  return i > 0 ? id.slice(0, i) : '';
}

/**
 * Why this batch may not be stored here, or undefined when it may. One bad item refuses the
 * whole batch (nothing stored): the sender keeps it and retries, so a hop whose config lags
 * behind the sender's (a tenant or topic added) takes it once it has caught up.
 */
export function refusal(ctx: Pick<AgentContext, 'tenants'>, sender: Sender, items: IncomingItem[]): { error: string; message: string } | undefined {
  for (const m of items) {
    const origin = originOf(m);
    if (!sender.origins.has(origin)) {
      return { error: 'origin_not_allowed', message: `${sender.node} may not forward messages of node "${origin}" here (ids start with the node that took them)` };
    }
    if (m.tenant === INTERNAL_TENANT) {
      if (m.topic !== HEARTBEAT_TOPIC && m.topic !== USAGE_TOPIC) return { error: 'topic_not_allowed', message: `tenant ${INTERNAL_TENANT} has only the topics ${HEARTBEAT_TOPIC} and ${USAGE_TOPIC}` };
      continue;
    }
    const tenant = ctx.tenants.get(m.tenant);
    if (!tenant) return { error: 'unknown_tenant', message: `tenant ${m.tenant} is not known at this hop` };
    if (!tenant.topics.has(m.topic)) return { error: 'topic_not_allowed', message: `topic ${m.topic} is not declared for tenant ${m.tenant} at this hop` };
  }
  return undefined;
}
