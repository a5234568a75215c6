import type { AgentContext } from './context.js';
import { listQuarantine } from './store/open.js';
import type { AppStatus } from './fastcgi/supervisor.js';
import type { ReloadReport } from './node-runtime.js';
import type { TunnelStatus } from './tunnel/tunnel.js';
import type { ServerCertStatus, UpstreamTls } from '../tls-hop/hop-tls.js';

export interface AgentStatus {
  node: string;
  role: string;
  store: { state: string; epoch: string; writeErrors: number; lastWriteError: { at: string; message: string } | null; incidents: readonly unknown[]; quarantined: string[]; commit: { batches: number; syncs: number; fdatasyncs: number; maxInFlight: number } };
  queues: Awaited<ReturnType<AgentContext['spool']['status']>>;
  totals: { depth: number; bytes: number; dropped: number; expired: number };
  forward: { lastSuccessAt: string | null; lastSuccessTo: string | null; messages: number; batches: number; errors: number; lastError: { at: string; message: string } | null; tls: UpstreamTls | null };
  intake: { forwardedAccepted: number; duplicatesDropped: number; responses: Record<string, number> };
  uptimeSeconds: number;
  /** sha256 of the agent.json bytes in force (null: flags only). */
  config: string | null;
  fastcgi: AppStatus[];
  reload: ReloadReport | null;
  /** tunnel: reverse nodes only. */
  tunnel?: TunnelStatus;
  /** forwardTls nodes only: the certificate this hop serves to the nodes that forward to it. */
  forwardTls?: ServerCertStatus;
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number };
}

export async function collectStatus(ctx: AgentContext): Promise<AgentStatus> {
  const { spool, stats } = ctx;
  const queues = await spool.status().catch(() => []);
  const totals = { depth: 0, bytes: 0, dropped: 0, expired: 0 };
  for (const q of queues) { totals.depth += q.depth; totals.bytes += q.bytes; totals.dropped += q.dropped; totals.expired += q.expired; }
  return {
    node: ctx.config.node,
    role: ctx.config.role,
    store: {
      state: spool.state,
      epoch: spool.epoch,
      writeErrors: spool.writeErrors,
      lastWriteError: spool.lastWriteError ?? null,
      incidents: spool.incidents,
      quarantined: await listQuarantine(ctx.config.dataDir),
      commit: spool.commitStats,
    },
    queues,
    totals,
    forward: {
      lastSuccessAt: stats.lastForwardAt ? new Date(stats.lastForwardAt).toISOString() : null,
      lastSuccessTo: stats.lastForwardTo ?? null,
      messages: stats.forwardedMessages,
      batches: stats.forwardedBatches,
      errors: stats.forwardErrors,
      lastError: stats.lastForwardError ?? null,
      tls: stats.upstreamTls ?? null,
    },
    intake: { forwardedAccepted: stats.receivedForwarded, duplicatesDropped: stats.duplicatesDropped, responses: Object.fromEntries([...stats.responses].map(([k, v]) => [String(k), v])) },
    uptimeSeconds: Math.round((Date.now() - stats.startedAt) / 1000),
    config: ctx.node?.configDigest ?? null,
    fastcgi: ctx.node?.fastcgi?.status() ?? [],
    reload: ctx.node?.reload ?? null,
    ...(ctx.tunnel ? { tunnel: ctx.tunnel() } : {}),
    ...(ctx.forwardTls ? { forwardTls: ctx.forwardTls() } : {}),
    memory: memory(),
  };
}

function memory(): AgentStatus['memory'] {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Prometheus text exposition format 0.0.4. */
export function renderMetrics(s: AgentStatus): string {
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, rows: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) {
      const l = Object.entries(labels).map(([k, x]) => `${k}="${esc(x)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${v}`);
    }
  };
  const q = (f: (x: AgentStatus['queues'][number]) => number) => s.queues.map((x) => [{ tenant: x.tenant, topic: x.topic }, f(x)] as [Record<string, string>, number]);
  metric('edgectl_spool_depth', 'gauge', 'Messages waiting in the spool', q((x) => x.depth));
  metric('edgectl_spool_bytes', 'gauge', 'Bytes waiting in the spool', q((x) => x.bytes));
  metric('edgectl_spool_oldest_age_seconds', 'gauge', 'Age of the oldest waiting message', q((x) => x.oldestAgeSeconds ?? 0));
  metric('edgectl_spool_dropped_total', 'counter', 'Messages dropped by drop-oldest', q((x) => x.dropped));
  metric('edgectl_spool_expired_total', 'counter', 'Messages dropped past their TTL', q((x) => x.expired));
  metric('edgectl_spool_purged_total', 'counter', 'Messages removed by an operator purge', q((x) => x.purged));
  metric('edgectl_spool_corrupt_total', 'counter', 'Unreadable records set aside', q((x) => x.corrupt));
  metric('edgectl_store_up', 'gauge', '1 when the store accepts writes', [[{}, s.store.state === 'open' ? 1 : 0]]);
  metric('edgectl_store_write_errors_total', 'counter', 'Failed synced writes (each answered 507, never acknowledged)', [[{}, s.store.writeErrors]]);
  metric('edgectl_store_repaired_total', 'counter', 'Store repairs since start', [[{}, s.store.incidents.filter((i) => (i as { kind: string }).kind === 'repaired').length]]);
  metric('edgectl_store_quarantined', 'gauge', 'Stores moved aside to quarantine (kept on disk)', [[{}, s.store.quarantined.length]]);
  metric('edgectl_forward_messages_total', 'counter', 'Messages delivered to the next hop or sink', [[{}, s.forward.messages]]);
  metric('edgectl_forward_errors_total', 'counter', 'Failed delivery attempts', [[{}, s.forward.errors]]);
  metric('edgectl_forward_last_success_timestamp_seconds', 'gauge', 'Time of the last successful delivery', [[{}, s.forward.lastSuccessAt ? Date.parse(s.forward.lastSuccessAt) / 1000 : 0]]);
  metric('edgectl_intake_duplicates_total', 'counter', 'Forwarded messages dropped as duplicates', [[{}, s.intake.duplicatesDropped]]);
  metric('edgectl_process_resident_memory_bytes', 'gauge', 'Resident set size of the agent', [[{}, s.memory.rssBytes]]);
  const apps = (f: (a: AppStatus) => number) => s.fastcgi.map((a) => [{ app: a.app }, f(a)] as [Record<string, string>, number]);
  metric('edgectl_fastcgi_up', 'gauge', '1 when every process of the FastCGI app runs without a recent crash', apps((a) => (a.state === 'running' ? 1 : 0)));
  metric('edgectl_fastcgi_processes', 'gauge', 'Processes of the FastCGI app running now', apps((a) => a.pids.length));
  metric('edgectl_fastcgi_restarts_total', 'counter', 'Processes of the FastCGI app started again after an exit', apps((a) => a.restarts));
  if (s.tunnel) {
    metric('edgectl_tunnel_up', 'gauge', '1 while the reverse tunnel listens on its relay', [[{ relay: s.tunnel.relay }, s.tunnel.state === 'up' ? 1 : 0]]);
    metric('edgectl_tunnel_reconnects_total', 'counter', 'Reverse tunnel connections after the first', [[{ relay: s.tunnel.relay }, s.tunnel.reconnects]]);
  }
  metric('edgectl_http_responses_total', 'counter', 'HTTP responses by status', Object.entries(s.intake.responses).map(([k, v]) => [{ code: k }, v]));
  return out.join('\n') + '\n';
}
