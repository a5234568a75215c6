import type { SpoolMessage } from '../../store/record.js';
import { HEARTBEAT_TOPIC, INTERNAL_TENANT } from '../../forward/wire.js';
import { USAGE_TOPIC } from '../../telemetry.js';
import { parseHeartbeat, parseUsage, type HeartbeatRow } from './bodies.js';

/** Columns of the message rows, one array per column (what unnest() takes). */
export interface MessageColumns {
  id: string[];
  tenant: string[];
  topic: string[];
  contentType: string[];
  body: Buffer[];
  node: string[];
  acceptedAt: (string | null)[];
  problem: (string | null)[];
}

export interface UsageColumns {
  node: string[]; source: string[]; tenant: string[]; app: string[]; minute: string[];
  requests: number[]; bytesIn: number[]; bytesOut: number[];
  s1: number[]; s2: number[]; s3: number[]; s4: number[]; s5: number[];
  hit: number[]; miss: number[];
  p50: (number | null)[]; p90: (number | null)[]; p99: (number | null)[]; max: (number | null)[];
  messageId: string[];
}

export interface BatchRows {
  messages: MessageColumns;
  /** Every heartbeat in the batch (history). */
  heartbeats: (HeartbeatRow & { messageId: string })[];
  /** The newest heartbeat of each node in the batch: one row per node, as ON CONFLICT DO UPDATE needs. */
  latest: HeartbeatRow[];
  usage: UsageColumns;
  /** Agent messages that did not parse as their type: stored as messages with their problem. */
  malformed: { id: string; problem: string }[];
}

/** The node a message id `<node>:<epoch>:<seq>` comes from. */
export const originOfId = (id: string) => { const i = id.indexOf(':'); return i > 0 ? id.slice(0, i) : ''; };

/** Within what timestamptz takes and an agent's clock could say; the rest is stored as null. */
const MAX_TS = Date.UTC(10000, 0, 1) - 1;

/** Splits a delivered batch into the rows of each table. Pure. */
export function batchRows(msgs: SpoolMessage[]): BatchRows {
  const messages: MessageColumns = { id: [], tenant: [], topic: [], contentType: [], body: [], node: [], acceptedAt: [], problem: [] };
  const usage: UsageColumns = { node: [], source: [], tenant: [], app: [], minute: [], requests: [], bytesIn: [], bytesOut: [], s1: [], s2: [], s3: [], s4: [], s5: [], hit: [], miss: [], p50: [], p90: [], p99: [], max: [], messageId: [] };
  const heartbeats: BatchRows['heartbeats'] = [];
  const latest = new Map<string, HeartbeatRow>();
  const malformed: BatchRows['malformed'] = [];
  const asMessage = (m: SpoolMessage, node: string, problem: string | null) => {
    messages.id.push(m.id); messages.tenant.push(m.tenant); messages.topic.push(m.topic); messages.contentType.push(m.contentType);
    messages.body.push(m.body); messages.node.push(node);
    messages.acceptedAt.push(m.ts >= 0 && m.ts <= MAX_TS ? new Date(m.ts).toISOString() : null);
    messages.problem.push(problem);
  };
  for (const m of msgs) {
    const node = originOfId(m.id);
    if (m.tenant !== INTERNAL_TENANT || (m.topic !== HEARTBEAT_TOPIC && m.topic !== USAGE_TOPIC)) {
      asMessage(m, node, null);
      continue;
    }
    if (m.topic === HEARTBEAT_TOPIC) {
      const h = parseHeartbeat(m.body, node);
      if ('problem' in h) { malformed.push({ id: m.id, problem: h.problem }); asMessage(m, node, h.problem); continue; }
      heartbeats.push({ ...h.ok, messageId: m.id });
      const prev = latest.get(node);
      if (!prev || Date.parse(prev.time) < Date.parse(h.ok.time)) latest.set(node, h.ok);
      continue;
    }
    const u = parseUsage(m.body, node);
    if ('problem' in u) { malformed.push({ id: m.id, problem: u.problem }); asMessage(m, node, u.problem); continue; }
    const x = u.ok;
    usage.node.push(x.node); usage.source.push(x.source); usage.tenant.push(x.tenant); usage.app.push(x.app); usage.minute.push(x.minute);
    usage.requests.push(x.requests); usage.bytesIn.push(x.bytesIn); usage.bytesOut.push(x.bytesOut);
    usage.s1.push(x.status['1xx']); usage.s2.push(x.status['2xx']); usage.s3.push(x.status['3xx']); usage.s4.push(x.status['4xx']); usage.s5.push(x.status['5xx']);
    usage.hit.push(x.cache.hit); usage.miss.push(x.cache.miss);
    usage.p50.push(x.upstreamMs?.p50 ?? null); usage.p90.push(x.upstreamMs?.p90 ?? null); usage.p99.push(x.upstreamMs?.p99 ?? null); usage.max.push(x.upstreamMs?.max ?? null);
    usage.messageId.push(m.id);
  }
  return { messages, heartbeats, latest: [...latest.values()], usage, malformed };
}
