import { connect as tcpConnect, type Socket } from 'node:net';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import type { AgentTunnel } from '../../bundle/agent-json.js';
import { splitHostPort } from '../../fleet/ip.js';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { PinnedHostKeys } from './host-key.js';
import { loadTunnelKey } from './key.js';

export type TunnelState = 'connecting' | 'up' | 'backoff' | 'stopped';

/** What /status shows of the tunnel (and the heartbeat's `tunnel`, a subset). */
export interface TunnelStatus {
  state: TunnelState;
  relay: string;
  /** Where the tunnel lands on the relay. */
  listen: string;
  upSince: string | null;
  /** Since when it has not been up (null while up). */
  downSince: string | null;
  /** Connections made after the first one. */
  reconnects: number;
  /** Tunnelled connections open to the node's sshd right now. */
  connections: number;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Set while the relay presents a key that is not pinned: the tunnel refuses it every time. */
  hostKeyRefused: string | null;
  /** When the next attempt starts (state backoff). */
  retryAt: string | null;
}

/** curve25519 first: ssh2's other key exchanges can stall for seconds (ssh2#1031, #1325). */
const KEX = ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group14-sha256'];

/**
 * A connection whose forward was granted and that stayed up this long was a good one: the next
 * failure starts the backoff over (after a short outage the node is back within a second, not at
 * the grown delay). One dropped sooner is a relay that lets the node in and drops it at once: the
 * backoff goes on growing, so such a relay is not hammered.
 */
const STABLE_MS = 1000;

export interface TunnelDeps {
  log: Logger;
  random?: () => number;
  now?: () => number;
}

/**
 * The reverse tunnel a NAT'd node holds (issue 16): one SSH connection from the node to the last
 * relay of its via chain, which listens on its 127.0.0.1:remotePort and hands every connection
 * there back to the node's own sshd. In-process with ssh2 rather than a supervised `ssh -R`: the
 * relay's pin, the state and the backoff are the agent's own, and /status can tell "host key
 * changed" from "relay down" from "port still held".
 *
 * Any failure (relay unreachable, key refused, the relay still holding an old listener for the
 * port) ends the connection and is retried after a full-jitter backoff capped at backoffCapMs;
 * nothing is ever given up, and a changed host key is never accepted.
 */
export class ReverseTunnel {
  private st: TunnelStatus;
  private stopped = false;
  private client?: Client;
  private wake?: () => void;
  private loop?: Promise<void>;
  private readonly pins: PinnedHostKeys;
  private readonly policy: BackoffPolicy;
  private readonly target: { host: string; port: number };
  private readonly sockets = new Set<Socket>();
  private connectedOnce = false;

  constructor(private readonly cfg: AgentTunnel, private readonly deps: TunnelDeps) {
    this.pins = new PinnedHostKeys(cfg.hostKeys);
    this.policy = { baseMs: cfg.backoffBaseMs ?? DEFAULT_BACKOFF.baseMs, capMs: cfg.backoffCapMs ?? DEFAULT_BACKOFF.capMs };
    this.target = splitHostPort(cfg.target);
    this.st = { state: 'stopped', relay: cfg.relay, listen: `127.0.0.1:${cfg.remotePort}`, upSince: null, downSince: this.iso(), reconnects: 0, connections: 0, lastError: null, lastErrorAt: null, hostKeyRefused: null, retryAt: null };
  }

  status(): TunnelStatus {
    return { ...this.st, connections: this.sockets.size };
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client?.end();
    this.wake?.();
    for (const s of this.sockets) s.destroy();
    await this.loop;
    this.st.state = 'stopped';
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      this.st.state = 'connecting';
      this.st.retryAt = null;
      const upFor = await this.session().then(
        (ms) => ms,
        (e: unknown) => {
          this.fail(errorMessage(e));
          return 0;
        },
      );
      if (this.stopped) break;
      if (upFor >= STABLE_MS) attempt = 0;
      const delay = backoffDelay(attempt++, this.policy, this.deps.random);
      this.st.state = 'backoff';
      this.st.retryAt = new Date(this.now() + delay).toISOString();
      this.deps.log.debug('tunnel: reconnecting after a pause', { relay: this.cfg.relay, delayMs: delay, attempt });
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        this.wake = () => (clearTimeout(t), r());
      });
      this.wake = undefined;
    }
  }

  private fail(message: string): void {
    this.st.lastError = message;
    this.st.lastErrorAt = this.iso();
    this.deps.log.warn('tunnel: down', { relay: this.cfg.relay, listen: this.st.listen, error: message });
  }

  private markDown(): void {
    if (this.st.upSince === null) return;
    this.st.upSince = null;
    this.st.downSince = this.iso();
  }

  /**
   * One connection: resolves with how long the tunnel was up once the connection ends after
   * the relay listened; rejects when it ended before (nothing listened).
   */
  private async session(): Promise<number> {
    if (this.pins.empty) throw new Error(`no host key is pinned for relay ${this.cfg.relay} in this node's release (pin it: spec.ssh.hostKey of ${this.cfg.relay} or the fleet's known_hosts, then apply): refusing to connect to a relay it cannot verify`);
    const key = await loadTunnelKey(this.cfg.keyFile);
    const { Client } = await import('ssh2');
    // stop() may have come while the key was read: no connection is started after it.
    if (this.stopped) return 0;
    const client = new Client();
    this.client = client;
    let upAt = 0;
    let refused: string | undefined;
    let why: string | undefined;
    return new Promise<number>((resolve, reject) => {
      const finish = () => {
        this.client = undefined;
        for (const s of this.sockets) s.destroy();
        if (upAt) {
          this.markDown();
          const up = this.now() - upAt;
          if (!this.stopped) this.fail(why ?? 'connection to the relay closed');
          resolve(up);
        } else {
          reject(new Error(refused ?? why ?? `connection to relay ${this.cfg.relay} (${this.cfg.host}:${this.cfg.port}) closed`));
        }
      };
      client.on('error', (e) => {
        why = refused ?? `relay ${this.cfg.relay} (${this.cfg.host}:${this.cfg.port}): ${e.message}`;
      });
      client.on('close', finish);
      client.on('ready', () => {
        this.st.hostKeyRefused = null;
        client.forwardIn('127.0.0.1', this.cfg.remotePort, (err) => {
          if (err) {
            // OpenSSH refuses while an earlier connection of ours still holds the listener (until its
            // ClientAliveInterval × ClientAliveCountMax runs out) or when permitlisten forbids the port.
            why = `relay ${this.cfg.relay} refused to listen on 127.0.0.1:${this.cfg.remotePort} (${err.message}): the port is still held by an earlier connection, or this node's key may not listen there`;
            client.end();
            return;
          }
          upAt = this.now();
          if (this.connectedOnce) this.st.reconnects++;
          this.connectedOnce = true;
          this.st.state = 'up';
          this.st.upSince = new Date(upAt).toISOString();
          this.st.downSince = null;
          this.deps.log.info('tunnel: up', { relay: this.cfg.relay, listen: this.st.listen, target: this.cfg.target, reconnects: this.st.reconnects });
        });
      });
      client.on('tcp connection', (info, accept, rejectConn) => {
        if (info.destPort !== this.cfg.remotePort) return void rejectConn();
        this.pipeToTarget(accept, rejectConn);
      });
      client.on('connect', () => client.setNoDelay(true));
      const keepalive = this.cfg.keepaliveIntervalMs ?? 10_000;
      client.connect({
        host: this.cfg.host,
        port: this.cfg.port,
        username: this.cfg.user,
        privateKey: key,
        readyTimeout: Math.max(5000, keepalive * 2),
        keepaliveInterval: keepalive,
        keepaliveCountMax: 3,
        algorithms: { kex: KEX as never, serverHostKey: this.pins.algorithms() as never },
        hostVerifier: (blob: Buffer) => {
          refused = this.pins.check(this.cfg.relay, blob);
          if (refused) this.st.hostKeyRefused = refused;
          return refused === undefined;
        },
      } as ConnectConfig);
    });
  }

  /** One tunnelled connection, accepted only once the node's sshd has answered. */
  private pipeToTarget(accept: () => ClientChannel, rejectConn: () => void): void {
    const sock = tcpConnect({ host: this.target.host, port: this.target.port });
    sock.setNoDelay(true);
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.once('error', (e) => {
      this.deps.log.warn('tunnel: cannot reach the node\'s sshd', { target: this.cfg.target, error: e.message });
      if (!ch) rejectConn();
    });
    let ch: ClientChannel | undefined;
    sock.once('connect', () => {
      try {
        ch = accept();
      } catch {
        // The relay connection went while the node's sshd answered: nothing to hand it to.
        return void sock.destroy();
      }
      ch.on('error', () => sock.destroy());
      ch.on('close', () => sock.destroy());
      sock.on('close', () => ch?.close());
      ch.pipe(sock).pipe(ch);
    });
  }
}

/** The heartbeat's `tunnel` (telemetry.ts Heartbeat): what the hub keeps of the status. */
export function tunnelHeartbeat(s: TunnelStatus): { state: string; upSince: string | null; reconnects: number; lastError: string | null } {
  return { state: s.state, upSince: s.upSince, reconnects: s.reconnects, lastError: s.lastError };
}
