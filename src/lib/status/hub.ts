import { EdgectlError, errorMessage } from '../errors.js';
import type { ResolvedNode } from '../fleet/model.js';
import type { Heartbeat } from '../agent/telemetry.js';
import { fastcgiOf, hexId, isoTime, num, obj, releaseName, text, tunnelOf, version, word } from './agent-report.js';
import { ago } from './ago.js';
import { assess } from './assess.js';
import { pathText, statusTargets } from './fleet.js';
import { blankStatus } from './live.js';
import { STATUS_FORMAT, summarise, type NodeStatus, type StatusReport } from './types.js';
import type { TargetOptions } from '../plan/index.js';
import type { Sql } from 'postgres';

/** Where the hub's PostgreSQL sink keeps each node's last heartbeat (its body: telemetry.ts Heartbeat). */
export const HEARTBEATS_LATEST = 'edgectl_heartbeats_latest';
/** A stored body larger than this is not read (a heartbeat is about a kilobyte). */
const MAX_BODY = 64 * 1024;
export const DEFAULT_STALE_SECONDS = 300;

export interface HubRow {
  node: string;
  time: Date | null;
  body: unknown;
}

export interface HubOptions extends Pick<TargetOptions, 'fleet' | 'nodes' | 'selector' | 'local'> {
  /** postgres:// URL of the hub's database. */
  db: string;
  /** A heartbeat older than this (seconds) makes the node's row an error: it has not been heard from. */
  staleSeconds: number;
  now: () => Date;
}

/** The URL with its password masked, for messages: it must never reach a log. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/** `edgectl status --from-hub`: each selected node's last heartbeat as stored at the hub; nodes with none are rows too. */
export async function statusFromHub(o: HubOptions): Promise<StatusReport> {
  if (!/^postgres(ql)?:\/\//.test(o.db)) throw new EdgectlError('EDGECTL_USAGE', `--hub-db must be a postgres:// URL, got ${JSON.stringify(redactUrl(o.db).slice(0, 80))}`);
  const { model, nodes } = await statusTargets(o);
  const rows = await readLatest(o.db, nodes.map((n) => n.name));
  const byNode = new Map(rows.map((r) => [r.node, r]));
  const now = o.now();
  const out = nodes.map((n) => statusOfHeartbeat(n, byNode.get(n.name), now, o.staleSeconds));
  return { format: STATUS_FORMAT, source: 'hub', at: now.toISOString(), fleet: { name: model.name, commit: model.commit ?? null, dirty: model.dirty }, nodes: out, summary: summarise(out) };
}

async function readLatest(url: string, names: string[]): Promise<HubRow[]> {
  const fail = (e: unknown) => new EdgectlError('EDGECTL_HUB_DB', `cannot read heartbeats from ${redactUrl(url)}: ${redactUrl(errorMessage(e))}`);
  // Parameters only; an oversized body is left in the database, not read into this process.
  return withHubDb(url, 'edgectl status', fail, (sql) => sql<HubRow[]>`
      select node, time, case when pg_column_size(body) <= ${MAX_BODY} then body end as body
      from ${sql(HEARTBEATS_LATEST)} where node = any(${names}::text[])`);
}

/**
 * One short session on the hub's database for an operator command (status --from-hub, usage):
 * one connection, opened for `fn` and closed after it whatever happens; every error, the
 * connection's included, goes out through `fail` (which keeps the password out of it).
 */
export async function withHubDb<T>(url: string, applicationName: string, fail: (e: unknown) => Error, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const { default: postgres } = await import('postgres');
  let sql: Sql;
  try {
    sql = postgres(url, { max: 1, connect_timeout: 10, idle_timeout: 1, onnotice: () => {}, connection: { application_name: applicationName } });
  } catch (e) {
    throw fail(e);
  }
  try {
    return await fn(sql);
  } catch (e) {
    throw fail(e);
  } finally {
    await sql.end({ timeout: 2 }).catch(() => {});
  }
}

/** One row from a stored heartbeat (or its absence). Pure: the body came from a node through the hub, and is read as hostile. */
export function statusOfHeartbeat(n: ResolvedNode, row: HubRow | undefined, now: Date, staleSeconds: number): NodeStatus {
  const c = { node: n, path: pathText(n, [...n.via, n.name]) };
  const hb = obj(row?.body) as (Partial<Record<keyof Heartbeat, unknown>> | undefined);
  if (!row || !hb) {
    const s = blankStatus(c, { reachable: false, error: row ? 'its stored heartbeat is not readable' : 'no heartbeat at the hub', source: 'hub' });
    return { ...s, ...assess(s) };
  }
  const time = isoTime(hb.time) ?? (row.time && !Number.isNaN(row.time.getTime()) ? row.time.toISOString() : null);
  const age = time ? (now.getTime() - Date.parse(time)) / 1000 : Infinity;
  if (text(hb.node) !== n.name) {
    const s = { ...blankStatus(c, { reachable: true, error: `its stored heartbeat names node ${JSON.stringify(text(hb.node))}`, source: 'hub' }), lastSeen: time };
    return { ...s, ...assess(s, { refused: true }) };
  }
  const agent = obj(hb.agent);
  const nginx = obj(hb.nginx);
  const release = obj(hb.release);
  const spool = obj(hb.spool);
  const disk = obj(hb.disk);
  const load = Array.isArray(hb.load) && hb.load.length === 3 && hb.load.every((x) => num(x) !== null) ? (hb.load as [number, number, number]) : null;
  const stale = age > staleSeconds;
  const s: Omit<NodeStatus, 'health' | 'problems'> = {
    ...blankStatus(c, { reachable: !stale, error: stale ? `last seen ${time ? ago(age) : 'at an unknown time'}` : '', source: 'hub' }),
    error: stale ? `last seen ${time ? ago(age) : 'at an unknown time'}` : null,
    lastSeen: time,
    release: { current: releaseName(release?.current), good: releaseName(release?.good), commit: null, goodCommit: null, behind: null },
    nginx: nginx ? { up: nginx.up === true, pid: num(nginx.masterPid), workers: num(nginx.workers), configId: hexId(nginx.configId), currentConfigId: null } : { up: false, pid: null, workers: null, configId: null, currentConfigId: null },
    agent: { state: 'up', version: version(agent?.version), uptimeSeconds: num(agent?.uptimeSeconds), store: word(hb.store), detail: null },
    spool: { depth: num(hb.depth) ?? 0, bytes: num(hb.bytes) ?? 0, oldestAgeSeconds: num(spool?.oldestAgeSeconds), dropped: num(spool?.dropped) ?? 0, expired: num(spool?.expired) ?? 0, quarantined: num(hb.quarantined) ?? 0 },
    lastForward: isoTime(hb.lastForward),
    fastcgi: hb.fastcgi !== undefined ? fastcgiOf(hb.fastcgi) : null,
    tunnel: tunnelOf(hb.tunnel),
    disk: disk && num(disk.freeBytes) !== null && num(disk.totalBytes) !== null ? { freeBytes: num(disk.freeBytes)!, totalBytes: num(disk.totalBytes)! } : null,
    load,
  };
  // An older agent's heartbeat says nothing of nginx or releases: unknown is not down.
  const judged = { ...s, nginx: nginx ? s.nginx : { ...s.nginx, up: true }, release: release ? s.release : { ...s.release, current: 'unknown', good: 'unknown' } };
  return { ...s, ...assess(judged) };
}
