import type { Duplex } from 'node:stream';
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { EdgectlError, isEdgectlError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { HostKeyStore, HostKeyTarget } from './host-keys.js';
import { Limiter } from './limiter.js';

/** One hop of a route: a relay or the node itself. */
export interface Hop extends HostKeyTarget {
  /** Where to connect: TCP host:port for the first hop, the forwardOut target for the others. */
  host: string;
  port: number;
  user: string;
  /** Key files to offer after the agent's keys. */
  identities: string[];
  /** Added to the error when the hop cannot be reached (e.g. how a reverse tunnel should be running). */
  hint?: string;
}

export interface HopOptions {
  hostKeys: HostKeyStore;
  /** Authentication methods to try for a hop, in order (ssh2 authHandler objects). */
  auth(hop: Hop): Promise<unknown[]>;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  retries: number;
  maxChannels: number;
  logger: Logger;
  onHandshake(hop: Hop): void;
}

/** curve25519 first: ssh2's other key exchanges can stall for seconds (ssh2#1031, #1325). */
const KEX = ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group14-sha256'];

/**
 * An authenticated ssh2 connection with a channel limit (sshd's MaxSessions is 10 per
 * connection; we keep `maxChannels` session channels, SFTP included, and queue the rest) and
 * one SFTP session opened on first use and reused.
 */
export class SshConn {
  readonly sessions: Limiter;
  closed = false;
  closeReason?: string;
  /** The server refused the SFTP subsystem (dropbear, hardened sshd): file calls go over exec channels. */
  noSftp = false;
  private sftpP?: Promise<SFTPWrapper>;
  private readonly onClose = new Set<(why: string) => void>();

  constructor(readonly hop: Hop, readonly client: Client, maxChannels: number) {
    // One slot is the SFTP session's for the connection's lifetime.
    this.sessions = new Limiter(Math.max(1, maxChannels - 1));
    client.on('close', () => this.markClosed('connection closed'));
    client.on('error', (e) => this.markClosed(e.message));
  }

  private markClosed(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = why;
    for (const f of [...this.onClose]) f(why);
  }

  /** Calls f if the connection drops while something waits on it; returns the unsubscribe. */
  whenClosed(f: (why: string) => void): () => void {
    if (this.closed) {
      f(this.closeReason ?? 'connection closed');
      return () => {};
    }
    this.onClose.add(f);
    return () => this.onClose.delete(f);
  }

  /**
   * Opens a session channel running `command`. sshd frees a session slot a little after the
   * channel's close reaches us, so a refused open is retried briefly before it counts.
   */
  async exec(command: string): Promise<ClientChannel> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<ClientChannel>((resolve, reject) => {
          if (this.closed) return reject(this.gone());
          this.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
        });
      } catch (e) {
        if (this.closed || attempt >= 6 || !/open failure/i.test((e as Error).message)) throw isEdgectlError(e) ? e : this.wrap(e as Error);
        await sleep(20 * 2 ** attempt);
      }
    }
  }

  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpP) {
      this.sftpP = new Promise<SFTPWrapper>((resolve, reject) => {
        if (this.closed) return reject(this.gone());
        this.client.sftp((err, s) => {
          // OpenSSH without the subsystem refuses it; dropbear runs its sftp-server path through the
          // shell, which exits 127 (not there) or 126 (not executable).
          if (err && (/subsystem/i.test(err.message) || /exit code 12[67] while establishing SFTP/i.test(err.message))) this.noSftp = true;
          if (err) return reject(this.wrap(err));
          // An 'error' event without a listener would crash the process; a broken session is reopened on next use.
          s.on('error', () => (this.sftpP = undefined));
          s.on('close', () => (this.sftpP = undefined));
          resolve(s);
        });
      });
      this.sftpP.catch(() => (this.sftpP = undefined));
    }
    return this.sftpP;
  }

  /** A direct-tcpip channel to host:port as the far side sees it. Not a session: MaxSessions does not count it. */
  forward(host: string, port: number, timeoutMs = 15_000): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(this.gone());
      // The far side connects with its own TCP timeout (minutes behind a dropping firewall): bound it here.
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new EdgectlError('EDGECTL_TRANSPORT', `${this.hop.label} could not connect to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, ch) => {
        clearTimeout(timer);
        if (late) return void ch?.close();
        if (err) reject(new EdgectlError('EDGECTL_TRANSPORT', `${this.hop.label} cannot open a connection to ${host}:${port}: ${err.message}`, { cause: err }));
        else resolve(ch);
      });
    });
  }

  end(): void {
    this.client.end();
  }

  /** Drops the connection now, failing everything in flight on it. */
  destroy(why: string): void {
    this.markClosed(why);
    this.client.destroy();
  }

  /** Rejects with a coded error as soon as the connection drops, whatever `p` is waiting for. */
  guard<T>(p: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const off = this.whenClosed((why) => reject(new EdgectlError('EDGECTL_TRANSPORT', `${what}: connection lost (${why})`)));
      p.then((v) => (off(), resolve(v)), (e) => (off(), reject(e)));
    });
  }

  gone(): EdgectlError {
    return new EdgectlError('EDGECTL_TRANSPORT', `connection to ${this.hop.label} is closed (${this.closeReason ?? 'closed'})`);
  }

  private wrap(err: Error): EdgectlError {
    return new EdgectlError('EDGECTL_TRANSPORT', `${this.hop.label}: ${err.message}`, { cause: err });
  }
}

/**
 * Connects one hop, directly or over a channel from the previous hop's connection, verifying
 * its host key. Retries transient failures (refused, reset, timeout) with backoff; host key
 * and authentication failures are final.
 */
export async function connectHop(hop: Hop, via: SshConn | undefined, o: HopOptions): Promise<SshConn> {
  const { Client } = await import('ssh2');
  let last: unknown;
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(250 * 4 ** (attempt - 1), 4000));
    try {
      const sock = via ? await via.forward(hop.host, hop.port, o.connectTimeoutMs) : undefined;
      const conn = await handshake(new Client(), hop, sock, o);
      // ssh2 does not end a forwarded channel when its connection dies: without this, a
      // connection tunnelled through a dead relay would wait for keepalives to notice.
      if (via) {
        const off = via.whenClosed(() => conn.destroy(`relay ${via.hop.node} connection lost`));
        conn.whenClosed(() => off());
      }
      return conn;
    } catch (e) {
      last = e;
      if (!retryable(e) || via?.closed) break;
      o.logger.debug('ssh connect failed, retrying', { hop: hop.label, attempt: attempt + 1, error: (e as Error).message });
    }
  }
  if (isEdgectlError(last) && last.code !== 'EDGECTL_TRANSPORT') throw last;
  const msg = (last as Error)?.message ?? String(last);
  throw new EdgectlError('EDGECTL_TRANSPORT', msg.startsWith(hop.label) ? msg : `${hop.label}: ${msg}`, { cause: last, ...(hop.hint ? { hint: hop.hint } : {}) });
}

async function handshake(client: Client, hop: Hop, sock: Duplex | undefined, o: HopOptions): Promise<SshConn> {
  const exp = await o.hostKeys.expect(hop);
  const auth = await o.auth(hop);
  let keyError: unknown;
  o.onHandshake(hop);
  return new Promise<SshConn>((resolve, reject) => {
    let done = false;
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.end();
      sock?.destroy();
      reject(keyError ?? e);
    };
    // ssh2's readyTimeout covers the handshake only; this covers forwardOut streams that never answer too.
    const timer = setTimeout(() => fail(new EdgectlError('EDGECTL_TRANSPORT', `${hop.label}: no SSH handshake within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs + 500);
    client.on('ready', () => {
      if (done) return void client.end();
      done = true;
      clearTimeout(timer);
      resolve(new SshConn(hop, client, o.maxChannels));
    });
    client.on('error', (e) => {
      if (/authentication methods failed/i.test(e.message)) {
        const offered = (auth as { type: string; agent?: string }[]).map((a) => (a.type === 'agent' ? `ssh-agent (${a.agent})` : 'a key file')).length;
        const files = hop.identities.length ? hop.identities.join(', ') : 'none';
        return fail(new EdgectlError('EDGECTL_TRANSPORT', `${hop.label}: authentication as "${hop.user}" failed (${offered} method(s) offered; key files considered: ${files})`, { cause: e }));
      }
      fail(e);
    });
    client.on('close', () => fail(new EdgectlError('EDGECTL_TRANSPORT', `${hop.label}: connection closed during the handshake`)));
    // Nagle off on the TCP socket, from the first packet: with it on, every request/response turn
    // (handshake steps, exec requests, channel data) can wait out a 40 ms delayed ACK. A hop
    // tunnelled through a relay rides the first hop's socket, which this covers.
    client.on('connect', () => client.setNoDelay(true));
    const serverHostKey = o.hostKeys.algorithmsFor(exp);
    client.connect({
      ...(sock ? { sock } : { host: hop.host, port: hop.port }),
      username: hop.user,
      authHandler: auth as never,
      readyTimeout: o.connectTimeoutMs,
      keepaliveInterval: o.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      algorithms: { kex: KEX as never, ...(serverHostKey ? { serverHostKey: serverHostKey as never } : {}) },
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        o.hostKeys.verify(hop, exp, key).then(
          () => verify(true),
          (e) => {
            keyError = e;
            verify(false);
          },
        );
      },
    } as ConnectConfig);
  });
}

function retryable(e: unknown): boolean {
  if (isEdgectlError(e) && e.code !== 'EDGECTL_TRANSPORT') return false;
  const msg = (e as Error)?.message ?? '';
  if (/authentication|Host denied|no matching/i.test(msg)) return false;
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
