import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

/**
 * A keeper is a tiny Node process per FastCGI app that holds the app's listening socket as its
 * fd 0 (without ever reading it) and spawns the app's processes with that fd as theirs, the
 * spawn-fcgi convention. It exists because the agent cannot hold the socket itself without
 * libuv accepting on it (socket.ts), yet must be able to start a replacement process at any
 * time. It does nothing on its own but reap and report; the agent decides everything. Each
 * process is a group leader (detached), so php-cgi's own children stop with it. When the
 * agent goes away (its IPC channel closes) the keeper stops the processes and exits.
 */
const SOURCE = String.raw`'use strict';
process.title = 'edgectl-fastcgi-keeper ' + (process.argv[1] || '');
const { spawn } = require('child_process');
const kids = new Map();
let ending = false;
const send = (m) => { try { if (process.connected) process.send(m); } catch {} };
const killGroup = (pid, sig) => { try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch {} } };
const maybeEnd = () => { if (ending && kids.size === 0) process.exit(0); };
function end(graceMs) {
  if (ending) return;
  ending = true;
  for (const pid of kids.keys()) killGroup(pid, 'SIGTERM');
  setTimeout(() => { for (const pid of kids.keys()) killGroup(pid, 'SIGKILL'); process.exit(0); }, graceMs || 5000).unref();
  maybeEnd();
}
process.on('message', (m) => {
  if (!m || typeof m !== 'object') return;
  if (m.op === 'spawn' && !ending) {
    let c;
    let told = false;
    const exit = (x) => { if (!told) { told = true; send(Object.assign({ op: 'exit', slot: m.slot, pid: c && c.pid }, x)); } };
    try {
      const who = Number.isInteger(m.uid) && Number.isInteger(m.gid) ? { uid: m.uid, gid: m.gid } : {};
      c = spawn(m.file, m.args, Object.assign({ cwd: m.cwd, env: m.env, stdio: [0, 'ignore', 2], detached: true }, who));
    } catch (e) { exit({ error: String((e && e.message) || e) }); return; }
    c.on('error', (e) => exit({ error: e.message }));
    c.on('spawn', () => { kids.set(c.pid, c); send({ op: 'spawned', slot: m.slot, pid: c.pid }); });
    c.on('exit', (code, signal) => { kids.delete(c.pid); exit({ code, signal }); maybeEnd(); });
  } else if (m.op === 'kill' && kids.has(m.pid)) {
    killGroup(m.pid, m.signal);
  } else if (m.op === 'stop') {
    end(m.graceMs);
  }
});
process.on('disconnect', () => end());
process.on('SIGTERM', () => end());
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
`;

export interface ExitInfo {
  slot: number;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  error?: string;
}

export interface SpawnRequest {
  slot: number;
  /** Run as (the keeper is root); supplementary groups are dropped. */
  uid?: number;
  gid?: number;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

export interface KeeperEvents {
  spawned: [slot: number, pid: number];
  exit: [info: ExitInfo];
  gone: [code: number | null, signal: string | null];
  stderr: [line: string];
}

export class Keeper extends EventEmitter<KeeperEvents> {
  private exited = false;
  private readonly done: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    super();
    this.done = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exited = true;
      this.emit('gone', code, signal);
      resolve();
    }));
    child.on('message', (m: { op?: string } & ExitInfo & { pid?: number }) => {
      if (m?.op === 'spawned' && typeof m.pid === 'number') this.emit('spawned', m.slot, m.pid);
      else if (m?.op === 'exit') this.emit('exit', m);
    });
    let buf = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.emit('stderr', buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > 4096) {
        this.emit('stderr', buf);
        buf = '';
      }
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Starts a keeper holding `fd` as its fd 0. Resolves once it runs. */
  static async start(fd: number, app: string): Promise<Keeper> {
    const child = spawn(process.execPath, ['-e', SOURCE, app], {
      stdio: [fd, 'ignore', 'pipe', 'ipc'],
      // Nothing of the agent's environment (NODE_OPTIONS could load code into it).
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      serialization: 'json',
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    return new Keeper(child);
  }

  spawn(req: SpawnRequest): void {
    if (this.exited || !this.child.connected) {
      this.emit('exit', { slot: req.slot, error: 'the keeper is gone' });
      return;
    }
    this.child.send({ op: 'spawn', ...req });
  }

  kill(pid: number, signal: NodeJS.Signals): void {
    if (!this.exited && this.child.connected) this.child.send({ op: 'kill', pid, signal });
  }

  /** Stops the processes (SIGTERM, then SIGKILL after graceMs) and the keeper; resolves when it exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.exited) {
      if (this.child.connected) this.child.send({ op: 'stop', graceMs });
      else this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs + 2000);
      await this.done;
      clearTimeout(t);
    }
  }
}
