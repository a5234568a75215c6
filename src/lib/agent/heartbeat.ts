import { readFileSync } from 'node:fs';
import { readFile, readlink, statfs } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { tunnelHeartbeat } from './tunnel/tunnel.js';
import type { AgentContext } from './context.js';
import { collectStatus } from './status.js';
import { HEARTBEAT_TOPIC, INTERNAL_TENANT } from './forward/wire.js';
import type { Heartbeat } from './telemetry.js';
import { nginxWorkers, nginxMaster } from './metering/nginx-master.js';
import { meterOf } from './metering/index.js';

/** What other parts of the agent add to the heartbeat (FastCGI supervision, the tunnel), when they run. */
/** Heartbeats waiting in the spool, at most: the oldest make room (the newest says the most). */
export const HEARTBEAT_QUOTA = 256 << 10;

/** The status snapshot of telemetry.ts's Heartbeat. Each part that cannot be read is left out, never fatal. */
export async function buildHeartbeat(ctx: AgentContext, now = Date.now()): Promise<Heartbeat> {
  const s = await collectStatus(ctx);
  let oldest: number | null = null;
  for (const q of s.queues) if (q.oldestAgeSeconds !== null && q.oldestAgeSeconds !== undefined && (oldest === null || q.oldestAgeSeconds > oldest)) oldest = q.oldestAgeSeconds;
  const root = ctx.config.metering?.root;
  const rel = root ? await releases(root) : undefined;
  const beat: Heartbeat = {
    node: s.node, role: s.role, time: new Date(now).toISOString(), store: s.store.state,
    depth: s.totals.depth, bytes: s.totals.bytes, quarantined: s.store.quarantined.length, lastForward: s.forward.lastSuccessAt,
    agent: { version: agentVersion(), uptimeSeconds: Math.round((now - ctx.stats.startedAt) / 1000), ...(ctx.node?.configDigest ? { config: ctx.node.configDigest } : rel?.digest ? { config: rel.digest } : {}) },
    spool: { oldestAgeSeconds: oldest, dropped: s.totals.dropped, expired: s.totals.expired },
    load: loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number],
  };
  if (rel) beat.release = { current: rel.current, good: rel.good };
  if (root) {
    const pid = await nginxMaster(ctx.config.metering?.nginxPidFile ?? `${root}/run/nginx.pid`);
    beat.nginx = { up: pid !== null, masterPid: pid, workers: pid ? await nginxWorkers(pid) : 0, configId: rel?.configId ?? null };
  }
  const meter = meterOf(ctx);
  if (meter) {
    const n = meter.position?.nginx;
    beat.metering = { garbageLines: n?.garbage ?? 0, unattributedLines: n?.unattributed ?? 0, accessLogOffset: n ? n.offset : null, failures: meter.stats.failures };
  }
  // What the agent runs besides HTTPQ: its FastCGI apps (the agent's own, not the store's) and its tunnel.
  const apps = ctx.node?.fastcgi?.status() ?? [];
  if (apps.length) beat.fastcgi = apps.map((a) => ({ app: a.app, state: a.state, processes: a.pids.length, restarts: a.restarts }));
  if (ctx.tunnel) beat.tunnel = tunnelHeartbeat(ctx.tunnel());
  if (s.forward.tls || s.forwardTls) {
    beat.tls = {
      ...(s.forward.tls ? { upstream: s.forward.tls.state } : {}),
      ...(s.forwardTls ? { server: { daysLeft: s.forwardTls.daysLeft, notAfter: s.forwardTls.notAfter } } : {}),
    };
  }
  const disk = await statfs(ctx.config.dataDir).catch(() => undefined);
  if (disk) beat.disk = { freeBytes: disk.bavail * disk.bsize, totalBytes: disk.blocks * disk.bsize };
  return beat;
}

/** Builds the heartbeat and stores it for the hub (priority over device data, see forwarder.ts). */
export async function sendHeartbeat(ctx: AgentContext, now = Date.now()): Promise<void> {
  const beat = await buildHeartbeat(ctx, now);
  // The tenant quota counts every INTERNAL_TENANT topic: heartbeats get their own room beside usage.
  let others = 0;
  for (const q of ctx.spool.queues()) if (q.tenant === INTERNAL_TENANT && q.topic !== HEARTBEAT_TOPIC) others += q.c.bytes;
  await ctx.spool.append(INTERNAL_TENANT, HEARTBEAT_TOPIC, [{ contentType: 'application/json', body: Buffer.from(JSON.stringify(beat)) }], { quotaBytes: HEARTBEAT_QUOTA + others, whenFull: 'drop-oldest' });
}

/** `releases/<name>` → name (the layout of src/lib/release/layout.ts, which the agent may not import). */
const releaseOfLink = (target: string) => /^(?:.*\/)?releases\/([0-9a-f]{20})\/?$/.exec(target.trim())?.[1];

async function releases(root: string): Promise<{ current: string | null; good: string | null; digest?: string; configId?: string }> {
  const link = (n: string) => readlink(`${root}/${n}`).then((t) => releaseOfLink(t) ?? null, () => null);
  const [current, good] = await Promise.all([link('current'), link('good')]);
  if (!current) return { current, good };
  const m = await readFile(`${root}/releases/${current}/manifest.json`, 'utf8').then((t) => JSON.parse(t) as { digest?: unknown; nginxConfigId?: unknown }, () => undefined);
  const str = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9:._-]{1,100}$/.test(v) ? v : undefined);
  return { current, good, digest: str(m?.digest), configId: str(m?.nginxConfigId) };
}

let version: string | undefined;

/**
 * The agent's version: on a node, the package digest bootstrap installed it under
 * (<root>/agent/<version>/edgectl-agent.cjs); from a checkout or npm, package.json's version.
 */
export function agentVersion(script = process.argv[1] ?? ''): string {
  if (version) return version;
  const dir = path.dirname(path.resolve(script));
  if (/^[0-9a-f]{20}$/.test(path.basename(dir))) return (version = path.basename(dir));
  for (let d = dir, i = 0; i < 6; i++, d = path.dirname(d)) {
    try {
      const p = JSON.parse(readFileSync(path.join(d, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'edgectl' && typeof p.version === 'string') return (version = p.version);
    } catch { /* not here */ }
  }
  return (version = 'unknown');
}
