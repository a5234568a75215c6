import type { NodeStatus, StatusReport } from '../status/types.js';
import { ago } from '../status/ago.js';
import { cell, type TableData } from './plan-table.js';
import type { Paint } from './validate-report.js';

const dash = '-';

/** 1536 → "1.5 KiB". */
export function bytesText(n: number | null | undefined): string {
  if (n === null || n === undefined) return dash;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function durationText(s: number | null | undefined): string {
  if (s === null || s === undefined) return dash;
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

const since = (iso: string | null, now: Date) => (iso ? ago((now.getTime() - Date.parse(iso)) / 1000) : dash);

function healthText(n: NodeStatus, c: Paint): string {
  if (n.health === 'healthy') return c.green('healthy');
  if (n.health === 'degraded') return c.yellow('degraded');
  return c.red(n.health);
}

function releaseText(n: NodeStatus): string {
  const r = n.release;
  if (!r.current) return n.reachable && n.source === 'live' ? 'none' : dash;
  const commit = r.commit ? ` (${r.commit.replace(/^([0-9a-f]{7})[0-9a-f]*/, '$1')})` : '';
  const behind = r.behind ? ` +${r.behind} in git` : '';
  const good = r.good && r.good !== r.current ? ` good ${r.good.slice(0, 12)}` : !r.good ? ' no good' : '';
  return `${r.current.slice(0, 12)}${commit}${behind}${good}`;
}

function nginxText(n: NodeStatus): string {
  if (!n.reachable && n.source === 'live') return dash;
  if (!n.nginx.up) return n.nginx.pid === null && n.source === 'hub' && n.nginx.workers === null ? dash : 'down';
  return `${n.nginx.pid ?? '?'} (${n.nginx.workers ?? '?'} w)`;
}

function agentText(n: NodeStatus): string {
  const a = n.agent;
  if ((!n.reachable && n.source === 'live') || (a.state === 'unknown' && !a.detail)) return dash;
  if (a.state !== 'up') return a.state;
  return [a.version ?? '', `up${a.uptimeSeconds !== null ? ` ${durationText(a.uptimeSeconds)}` : ''}`].filter(Boolean).join(' ');
}

function spoolText(n: NodeStatus): string {
  const s = n.spool;
  if (!s) return dash;
  return `${s.depth} / ${bytesText(s.bytes)}${s.oldestAgeSeconds !== null && s.depth > 0 ? ` / ${durationText(s.oldestAgeSeconds)}` : ''}`;
}

function diskText(n: NodeStatus): string {
  const d = n.disk;
  if (!d) return dash;
  return `${bytesText(d.freeBytes)}${d.totalBytes ? ` (${Math.round((100 * d.freeBytes) / d.totalBytes)}%)` : ''}`;
}

/** status as a table, one row per node, each node's problems in full after it. Pure. */
export function statusTable(r: StatusReport, c: Paint, now: Date = new Date(r.at)): TableData {
  const notes: string[] = [];
  const hub = r.source === 'hub';
  const head = ['node', 'path', 'health', ...(hub ? ['last seen'] : []), 'release', 'nginx', 'agent', 'spool (n / bytes / oldest)', 'dropped / quar.', 'last forward', 'fastcgi', 'tunnel', 'disk free', 'load'];
  const rows = r.nodes.map((n) => [
    n.node,
    n.path,
    healthText(n, c) + (n.problems.length && n.health !== 'healthy' ? c.dim(`: ${cell(n.problems.join('; '), 60, n.node, notes)}`) : ''),
    ...(hub ? [since(n.lastSeen, now)] : []),
    releaseText(n),
    nginxText(n),
    agentText(n),
    spoolText(n),
    n.spool ? `${n.spool.dropped + n.spool.expired} / ${n.spool.quarantined}` : dash,
    since(n.lastForward, now),
    n.fastcgi?.length ? n.fastcgi.map((a) => `${a.app} ${a.state}`).join(', ') : dash,
    n.tunnel ? n.tunnel.state : dash,
    diskText(n),
    n.load ? n.load.map((x) => x.toFixed(2)).join(' ') : dash,
  ]);
  for (const n of r.nodes) if (n.hint && n.health === 'unreachable') notes.push(`${n.node}: hint: ${n.hint}`);
  return { head, rows, notes };
}

export function statusSummaryLine(r: StatusReport): string {
  const s = r.summary;
  const from = r.source === 'hub' ? ' (from the hub\'s last heartbeats)' : '';
  return `${s.nodes} node(s)${from}: ${s.healthy} healthy, ${s.degraded} degraded, ${s.unreachable} unreachable${s.error ? `, ${s.error} in error` : ''}`;
}
