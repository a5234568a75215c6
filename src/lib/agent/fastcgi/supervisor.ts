import type { FastcgiApp } from '../../bundle/agent-json.js';
import type { Logger } from '../../logger.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { nginxWorkerIdentity } from './nginx-user.js';
import { stopLeftovers } from './pid-file.js';
import { AppRunner, type AppStatus } from './runner.js';

export type { AppStatus } from './runner.js';

export interface FastcgiSummary {
  apps: number;
  running: number;
  backoff: number;
  stopped: number;
}

export interface ReconcileResult {
  started: string[];
  restarted: string[];
  stopped: string[];
  unchanged: string[];
}

export interface SupervisorOptions {
  /** <root>/run/fastcgi: the apps' sockets, pid files of this agent and of earlier ones. */
  runDir: string;
  /** <root>/current/apps: where each app's directory must be. */
  appsDir: string;
  /** The rendered nginx.conf, read for the `user` its workers run as. */
  nginxConf: string;
  log: Logger;
  policy?: BackoffPolicy;
}

/** Same process set: nothing to restart. The digest covers the payload, command and processes. */
function sameRun(a: FastcgiApp, b: FastcgiApp): boolean {
  return a.socket === b.socket && a.root === b.root && a.processes === b.processes && a.digest === b.digest && JSON.stringify(a.command ?? null) === JSON.stringify(b.command ?? null);
}

/**
 * Every FastCGI app of the node. apply() makes the running set match agent.json's list:
 * unchanged apps keep their processes, changed ones get a new runner (started before the old
 * one stops, so the socket path is never without a listener), new ones start, removed ones stop.
 * Lives as long as the agent process, across reloads that re-create the HTTPQ agent.
 */
export class FastcgiSupervisor {
  private apps = new Map<string, AppRunner>();
  private leftoversDone = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: SupervisorOptions) {}

  apply(entries: readonly FastcgiApp[]): Promise<ReconcileResult> {
    const run = this.queue.then(() => this.reconcile(entries));
    this.queue = run.catch(() => {});
    return run;
  }

  private async reconcile(entries: readonly FastcgiApp[]): Promise<ReconcileResult> {
    const { log } = this.o;
    if (!this.leftoversDone) {
      this.leftoversDone = true;
      await stopLeftovers(this.o.runDir, log);
    }
    const out: ReconcileResult = { started: [], restarted: [], stopped: [], unchanged: [] };
    const wanted = new Map(entries.map((e) => [e.app, e]));
    for (const [id, runner] of [...this.apps]) {
      if (wanted.has(id)) continue;
      this.apps.delete(id);
      await runner.stop();
      out.stopped.push(id);
    }
    for (const e of entries) {
      const old = this.apps.get(e.app);
      if (old && sameRun(old.entry, e)) {
        out.unchanged.push(e.app);
        continue;
      }
      const runner = new AppRunner(e, {
        refused: this.misplaced(e), log, runDir: this.o.runDir, policy: this.o.policy ?? DEFAULT_BACKOFF, workers: () => nginxWorkerIdentity(this.o.nginxConf) });
      this.apps.set(e.app, runner);
      await runner.start();
      if (old) await old.stop();
      (old ? out.restarted : out.started).push(e.app);
    }
    if (out.started.length + out.restarted.length + out.stopped.length > 0) log.info('fastcgi apps reconciled', { ...out });
    return out;
  }

  /**
   * agent.json is input: a socket elsewhere would have the agent (root) chmod a directory and
   * rename over a file anywhere, a root elsewhere would run a program from anywhere. Each must
   * be exactly where render puts it.
   */
  private misplaced(e: FastcgiApp): string | undefined {
    if (e.socket !== `${this.o.runDir}/${e.app}.sock`) return `socket must be ${this.o.runDir}/${e.app}.sock, not ${e.socket}`;
    if (e.root !== `${this.o.appsDir}/${e.app}`) return `root must be ${this.o.appsDir}/${e.app}, not ${e.root}`;
    return undefined;
  }

  status(): AppStatus[] {
    return [...this.apps.values()].map((r) => r.status()).sort((a, b) => (a.app < b.app ? -1 : 1));
  }

  summary(): FastcgiSummary {
    const s = this.status();
    return { apps: s.length, running: s.filter((x) => x.state === 'running').length, backoff: s.filter((x) => x.state === 'backoff').length, stopped: s.filter((x) => x.state === 'stopped').length };
  }

  /** Stops every app (agent stop). */
  stop(): Promise<void> {
    const run = this.queue.then(async () => {
      const all = [...this.apps.values()];
      this.apps.clear();
      await Promise.all(all.map((r) => r.stop()));
    });
    this.queue = run.catch(() => {});
    return run;
  }
}
