import type { AppStatus, FastcgiSummary } from './fastcgi/supervisor.js';

/** The outcome of the last SIGHUP: applied (with what it changed), unchanged, or failed (the running config kept). */
export interface ReloadReport {
  at: string;
  outcome: 'applied' | 'unchanged' | 'failed';
  /** sha256 of the agent.json bytes read, when they could be read. */
  config?: string | null;
  agent?: 'recreated' | 'kept';
  fastcgi?: { started: string[]; restarted: string[]; stopped: string[]; unchanged: string[] };
  error?: string;
}

/**
 * What the agent process knows beyond one Agent instance (which a reload may re-create): the
 * digest of the agent.json it runs, its FastCGI apps and the last reload. /healthz and /status
 * show it; the HTTP handlers read it live, so they always show the current values.
 */
export interface NodeRuntime {
  /** sha256 hex of the agent.json bytes in force; null when the config came from flags alone. */
  configDigest: string | null;
  /** The agent build running (bootstrap's version digest, the name of its directory under <root>/agent/); null when not run from one. */
  version?: string | null;
  fastcgi?: { summary(): FastcgiSummary; status(): AppStatus[] };
  reload: ReloadReport | null;
}
