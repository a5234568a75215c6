/**
 * What the agents ship about themselves, through HTTPQ, to the hub (tenant INTERNAL_TENANT): the
 * contract between the agent that writes these bodies, the hub's sinks that store them (the
 * PostgreSQL sink's heartbeat and usage tables) and `edgectl status --from-hub` that reads them.
 * Bodies are JSON (application/json). Every field added later is optional: an older hub or CLI
 * ignores what it does not know, a newer one reads an older body.
 */

/** Topic of INTERNAL_TENANT carrying one UsageMinute per body. */
export const USAGE_TOPIC = 'usage';

/** Counts by HTTP status class. */
export interface StatusClasses { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number }

/**
 * One minute of one tenant's traffic through one app on one node (source nginx: its JSON access
 * log), or through one HTTPQ topic (source httpq: the agent's intake). Its natural key is
 * (node, source, tenant, app, minute): a repeat of the same key is the same minute and is stored
 * once (a hub that sees a key again keeps the first copy).
 */
export interface UsageMinute {
  v: 1;
  node: string;
  source: 'nginx' | 'httpq';
  tenant: string;
  /** The app's id (tenant-app) for nginx; the topic for httpq. */
  app: string;
  /** Start of the minute, UTC, ISO 8601 with seconds 00 (2026-12-02T06:41:00.000Z). */
  minute: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  status: StatusClasses;
  cache: { hit: number; miss: number };
  /** Upstream response time percentiles in ms over the minute's requests that had one; null if none. */
  upstreamMs: { p50: number; p90: number; p99: number; max: number } | null;
}

/** The compact status snapshot an agent sends as its heartbeat (topic HEARTBEAT_TOPIC). */
export interface Heartbeat {
  node: string;
  role: string;
  /** When the agent took the snapshot (ISO). */
  time: string;
  store: string;
  depth: number;
  bytes: number;
  quarantined: number;
  lastForward: string | null;
  /** Added with issue 14; optional for older agents. */
  agent?: { version: string; uptimeSeconds: number; config?: string };
  release?: { current: string | null; good: string | null };
  nginx?: { up: boolean; masterPid: number | null; workers: number; configId?: string | null };
  spool?: { oldestAgeSeconds: number | null; dropped: number; expired: number };
  fastcgi?: { app: string; state: string; processes: number; restarts: number }[];
  tunnel?: { state: string; upSince: string | null; reconnects: number; lastError: string | null };
  disk?: { freeBytes: number; totalBytes: number };
  /** TLS on the uplink hops (issue 17): what the next hop's certificate did last (ok, expired, untrusted, wrong-name, …), and the days left on this hop's own. */
  tls?: { upstream?: string; server?: { daysLeft: number | null; notAfter: string | null } };
  load?: [number, number, number];
  /** Metering's position (agent/metering/): access-log lines skipped as unparseable, lines of the default server, failed steps. */
  metering?: { garbageLines: number; unattributedLines: number; accessLogOffset: number | null; failures: number };
}
