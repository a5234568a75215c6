import type { FastcgiApp } from '../../bundle/agent-json.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { nextStart, type BackoffPolicy } from './backoff.js';
import { Keeper, type ExitInfo } from './keeper.js';
import type { WorkerIdentity } from './nginx-user.js';
import { PidFile } from './pid-file.js';
import { bindSocket } from './socket.js';
import { spawnPlan } from './spawn-plan.js';

const STDERR_LINES = 100;

export type AppState = 'running' | 'backoff' | 'stopped';

export interface LastExit {
  at: string;
  pid: number | null;
  code: number | null;
  signal: string | null;
  error?: string;
  uptimeMs: number;
  crash: boolean;
}

/** One app in the agent's /status. */
export interface AppStatus {
  app: string;
  state: AppState;
  since: string;
  processes: number;
  pids: number[];
  restarts: number;
  lastExit: LastExit | null;
  /** Delay before the next start of a process in backoff (the longest, when several are). */
  backoffMs?: number;
  keeper?: number;
  digest?: string;
  /** Why nothing runs (no command, the socket could not be bound…). */
  error?: string;
}

interface Slot {
  pid?: number;
  startedAt?: number;
  crashes: number;
  timer?: NodeJS.Timeout;
  /** Clears `crashes` once a process after a crash stayed up the policy's stableMs. */
  stableTimer?: NodeJS.Timeout;
  delayMs: number;
}

export interface RunnerDeps {
  log: Logger;
  /** Why this entry must not run at all (supervisor.ts checks where it points). */
  refused?: string;
  runDir: string;
  policy: BackoffPolicy;
  workers: () => Promise<WorkerIdentity | undefined>;
}

/**
 * The processes of one FastCGI app: a keeper holding its socket, `processes` slots, each
 * restarted with backoff (backoff.ts) when its process exits. Constructed for one agent.json
 * entry; a changed entry gets a new runner (supervisor.ts).
 */
export class AppRunner {
  private keeper?: Keeper;
  private slots: Slot[] = [];
  private stopping = false;
  private restarts = 0;
  private lastExit: LastExit | null = null;
  private error?: string;
  private state: AppState = 'stopped';
  private since = Date.now();
  private pidFile: PidFile;
  private keeperCrashes = 0;
  private keeperTimer?: NodeJS.Timeout;
  /** Tenant code never runs as root: as nginx's workers when the agent is root, else as the agent. */
  private runAs?: { uid: number; gid: number };
  private stderrBudget = { windowStart: 0, lines: 0, dropped: 0 };

  constructor(readonly entry: FastcgiApp, private readonly deps: RunnerDeps) {
    this.pidFile = new PidFile(deps.runDir, entry.app);
  }

  async start(): Promise<void> {
    if (!this.entry.command || this.deps.refused) {
      this.error = this.deps.refused ?? 'no command: nothing serves this app';
      if (this.deps.refused) this.deps.log.error('fastcgi app refused', { app: this.entry.app, error: this.error });
      return;
    }
    this.slots = Array.from({ length: this.entry.processes }, () => ({ crashes: 0, delayMs: 0 }));
    await this.startKeeper();
  }

  private async startKeeper(): Promise<void> {
    const { log } = this.deps;
    let keeper: Keeper;
    try {
      const workers = await this.deps.workers();
      this.runAs = workers ? { uid: workers.uid, gid: workers.gid } : undefined;
      const sock = await bindSocket(this.entry.socket, workers);
      try {
        keeper = await Keeper.start(sock.fd, this.entry.app);
      } catch (err) {
        sock.abandon();
        throw err;
      }
      sock.publish();
    } catch (err) {
      this.error = `cannot open ${this.entry.socket}: ${errorMessage(err)}`;
      log.error('fastcgi app cannot start', { app: this.entry.app, error: this.error });
      this.scheduleKeeper();
      return;
    }
    if (this.stopping) return void (await keeper.stop(0));
    this.error = undefined;
    this.keeper = keeper;
    keeper.on('spawned', (slot, pid) => this.spawned(slot, pid));
    keeper.on('exit', (info) => this.exited(info));
    keeper.on('stderr', (line) => this.stderr(line));
    keeper.on('gone', (code, signal) => void this.keeperGone(keeper, code, signal));
    this.pidFile.keeper(keeper.pid!);
    log.info('fastcgi app listening', { app: this.entry.app, socket: this.entry.socket, processes: this.entry.processes, keeper: keeper.pid });
    for (let i = 0; i < this.slots.length; i++) void this.spawn(i);
    this.update();
  }

  /** The app's stderr in the agent's log, at most STDERR_LINES a minute (a chatty app must not flood the journal). */
  private stderr(line: string): void {
    const b = this.stderrBudget;
    const now = Date.now();
    if (now - b.windowStart >= 60_000) {
      if (b.dropped) this.deps.log.warn('fastcgi stderr lines dropped', { app: this.entry.app, lines: b.dropped });
      Object.assign(b, { windowStart: now, lines: 0, dropped: 0 });
    }
    if (++b.lines > STDERR_LINES) return void b.dropped++;
    this.deps.log.warn('fastcgi stderr', { app: this.entry.app, line: line.slice(0, 500) });
  }

  /** The keeper died (not by our stop): its processes may live on, orphaned; stop them and start over. */
  private async keeperGone(k: Keeper, code: number | null, signal: string | null): Promise<void> {
    if (this.stopping || this.keeper !== k) return;
    this.keeper = undefined;
    this.deps.log.error('fastcgi keeper exited; the app starts again', { app: this.entry.app, code, signal });
    for (const s of this.slots) {
      clearTimeout(s.timer);
      s.timer = undefined;
      s.pid = undefined;
    }
    await this.pidFile.killAll();
    this.scheduleKeeper();
  }

  private scheduleKeeper(): void {
    if (this.stopping) return;
    const { delayMs, crashes } = nextStart(this.keeperCrashes, { code: 1, uptimeMs: 0 }, this.deps.policy);
    this.keeperCrashes = crashes;
    this.restarts++;
    this.keeperTimer = setTimeout(() => {
      this.keeperTimer = undefined;
      void this.startKeeper();
    }, delayMs);
    this.update();
  }

  private async spawn(i: number): Promise<void> {
    const slot = this.slots[i];
    slot.timer = undefined;
    if (this.stopping || !this.keeper) return;
    try {
      const plan = await spawnPlan(this.entry);
      if (this.stopping || !this.keeper) return;
      slot.startedAt = Date.now();
      this.keeper.spawn({ slot: i, ...plan, ...this.runAs });
    } catch (err) {
      slot.startedAt = Date.now();
      this.exited({ slot: i, error: errorMessage(err) });
    }
  }

  private spawned(i: number, pid: number): void {
    const slot = this.slots[i];
    if (!slot) return;
    slot.pid = pid;
    this.pidFile.add(pid);
    if (slot.crashes > 0) {
      slot.stableTimer = setTimeout(() => {
        slot.crashes = 0;
        this.update();
      }, this.deps.policy.stableMs);
      slot.stableTimer.unref();
    }
    this.update();
  }

  private exited(info: ExitInfo): void {
    const slot = this.slots[info.slot];
    if (!slot) return;
    if (info.pid) this.pidFile.remove(info.pid);
    slot.pid = undefined;
    clearTimeout(slot.stableTimer);
    if (this.stopping) return void this.update();
    const uptimeMs = Date.now() - (slot.startedAt ?? Date.now());
    const exit = { code: info.code ?? null, signal: info.signal ?? null, error: info.error, uptimeMs };
    const { crashes, delayMs } = nextStart(slot.crashes, exit, this.deps.policy);
    const crash = delayMs > 0;
    slot.crashes = crashes;
    slot.delayMs = delayMs;
    this.lastExit = { at: new Date().toISOString(), pid: info.pid ?? null, code: exit.code, signal: exit.signal, ...(info.error ? { error: info.error } : {}), uptimeMs, crash };
    this.restarts++;
    (crash ? this.deps.log.warn : this.deps.log.info).call(this.deps.log, crash ? 'fastcgi process crashed' : 'fastcgi process ended', { app: this.entry.app, ...this.lastExit, nextStartMs: delayMs });
    slot.timer = setTimeout(() => void this.spawn(info.slot), delayMs);
    this.update();
  }

  private update(): void {
    // A process that crashed is in backoff until its replacement stayed up stableMs.
    const waiting = this.slots.some((s) => s.crashes > 0);
    const next: AppState = this.stopping || (!this.keeper && !this.keeperTimer) ? 'stopped' : waiting || !this.keeper ? 'backoff' : 'running';
    if (next !== this.state) {
      this.state = next;
      this.since = Date.now();
    }
  }

  status(): AppStatus {
    const waiting = this.slots.filter((s) => s.crashes > 0).map((s) => s.delayMs);
    return {
      app: this.entry.app,
      state: this.state,
      since: new Date(this.since).toISOString(),
      processes: this.entry.processes,
      pids: this.slots.flatMap((s) => (s.pid ? [s.pid] : [])),
      restarts: this.restarts,
      lastExit: this.lastExit,
      ...(waiting.length ? { backoffMs: Math.max(...waiting) } : {}),
      ...(this.keeper?.pid ? { keeper: this.keeper.pid } : {}),
      ...(this.entry.digest ? { digest: this.entry.digest } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }

  async stop(graceMs?: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.keeperTimer);
    this.keeperTimer = undefined;
    for (const s of this.slots) {
      clearTimeout(s.timer);
      clearTimeout(s.stableTimer);
      s.timer = undefined;
    }
    const k = this.keeper;
    this.keeper = undefined;
    await k?.stop(graceMs);
    // The keeper waited for its processes; anything recorded and still alive is killed by pid.
    await this.pidFile.killAll();
    await this.pidFile.delete();
    this.update();
  }
}
