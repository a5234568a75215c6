/**
 * `edgectl status`: one row per node, from the node itself (live, one exec over its transport) or
 * from its last heartbeat stored at the hub (--from-hub). Fields a node or its agent did not
 * report are null: an older agent, a node without FastCGI apps or a tunnel, a heartbeat from
 * before issue 14. The JSON form is versioned (STATUS_FORMAT).
 */
export const STATUS_FORMAT = 'edgectl-status/v1';

/** error: the node answered, but not as a node can (its answer was refused), or its heartbeat is too old or missing. */
export type Health = 'healthy' | 'degraded' | 'unreachable' | 'error';

export interface ReleaseStatus {
  current: string | null;
  good: string | null;
  /** The fleet commit current was rendered from (its release record), "-dirty" when uncommitted. */
  commit: string | null;
  goodCommit: string | null;
  /** Commits the fleet's HEAD is ahead of current's commit; null when unknown (no commit, not in this repo). */
  behind: number | null;
}

export interface AgentInfo {
  /** up: /healthz answered ok; down: it did not answer, or not ok; none: no agent installed or ever run; unknown: nothing to ask with. */
  state: 'up' | 'down' | 'none' | 'unknown';
  version: string | null;
  uptimeSeconds: number | null;
  /** The store's state as the agent reports it (open, failed, …). */
  store: string | null;
  /** Why the state is what it is, when that is not plain "up". */
  detail: string | null;
}

export interface SpoolInfo {
  depth: number;
  bytes: number;
  oldestAgeSeconds: number | null;
  dropped: number;
  expired: number;
  quarantined: number;
}

export interface FastcgiInfo {
  app: string;
  state: string;
  processes: number | null;
  restarts: number | null;
}

export interface TunnelInfo {
  state: string;
  upSince: string | null;
  reconnects: number | null;
  lastError: string | null;
}

export interface NodeStatus {
  node: string;
  role: string;
  /** How the node is reached: direct, "via relay-1 > relay-2", "tunnel via relay-1", local. */
  path: string;
  source: 'live' | 'hub';
  reachable: boolean;
  /** Unreachable: why (the connection's error); a refused answer says so here too. */
  error: string | null;
  /** With an unreachable node: what to check (the connection error's hint). */
  hint: string | null;
  /** --from-hub: when the node's last heartbeat was taken (null: none stored). */
  lastSeen: string | null;
  release: ReleaseStatus;
  /** configId: the config nginx serves (GET /.edgectl/config); currentConfigId: the one current's manifest names. */
  nginx: { up: boolean; pid: number | null; workers: number | null; configId: string | null; currentConfigId: string | null };
  agent: AgentInfo;
  spool: SpoolInfo | null;
  lastForward: string | null;
  fastcgi: FastcgiInfo[] | null;
  tunnel: TunnelInfo | null;
  disk: { freeBytes: number; totalBytes: number } | null;
  load: [number, number, number] | null;
  /** Live status: each TLS app's certificate in the current release, with its days to expiry (absent from the hub). */
  certs?: { app: string; notAfter: string; days: number }[];
  health: Health;
  /** What makes the node degraded or unreachable, one short phrase each. */
  problems: string[];
}

export interface StatusSummary {
  nodes: number;
  healthy: number;
  degraded: number;
  unreachable: number;
  error: number;
}

export interface StatusReport {
  format: typeof STATUS_FORMAT;
  source: 'live' | 'hub';
  /** When the report was made (ISO). */
  at: string;
  fleet: { name: string; commit: string | null; dirty: boolean };
  nodes: NodeStatus[];
  summary: StatusSummary;
}

/** 0 all healthy, 2 some degraded (none unreachable), 1 any unreachable or in error. */
export function statusExitCode(s: StatusSummary): 0 | 1 | 2 {
  if (s.unreachable > 0 || s.error > 0) return 1;
  return s.degraded > 0 ? 2 : 0;
}

export function summarise(nodes: readonly NodeStatus[]): StatusSummary {
  const count = (h: Health) => nodes.filter((n) => n.health === h).length;
  return { nodes: nodes.length, healthy: count('healthy'), degraded: count('degraded'), unreachable: count('unreachable'), error: count('error') };
}
