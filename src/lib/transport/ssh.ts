import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { EdgectlError } from '../errors.js';
import { httpOver } from './http-over.js';
import { feed, signalExitCode } from './local.js';
import { OutputBuffer, settleOnce } from './output-buffer.js';
import { shJoin, shQuote } from './quote.js';
import type { SshConn } from './ssh-conn.js';
import { readFileByExec, statByExec, writeFilesByExec } from './exec-files.js';
import type { ExecOptions, ExecResult, FileTransfer, HttpRequest, HttpResponse, StatResult, Transport } from './types.js';

const SFTP_NO_SUCH_FILE = 2;
const WRITE_PARALLEL = 16;

/**
 * A node over SSH. Commands go through the login shell of the node's user, so every argv word
 * is single-quoted (quote.ts); files go over the connection's one SFTP session; HTTP goes
 * through a direct-tcpip channel, so it reaches the node's loopback without opening any port.
 * A node whose sshd refuses the SFTP subsystem gets its file calls over exec channels instead
 * (exec-files.ts), chosen by itself on the first refusal and reported as `fileTransfer`.
 */
export class SshTransport implements Transport {
  private closed = false;
  turns = 0;

  constructor(readonly node: string, readonly root: string | undefined, private readonly conn: SshConn, private readonly onClose: () => void, private readonly defaults: { execTimeoutMs?: number } = {}) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) return Promise.reject(new EdgectlError('EDGECTL_INTERNAL', 'exec needs a command'));
    let command: string;
    try {
      command = (opts.cwd ? `cd ${shQuote(opts.cwd)} && ` : '') + shJoin(argv);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = opts.timeoutMs ?? this.defaults.execTimeoutMs;
    this.turns++;
    return this.conn.sessions.run(async () => {
      const ch = await this.conn.exec(command);
      return new Promise<ExecResult>((resolve, reject) => {
        const out = new OutputBuffer();
        const err = new OutputBuffer();
        const settle = settleOnce(() => {
          clearTimeout(timer);
          unsubscribe();
        });
        const what = `${this.node}: \`${argv[0]}\``;
        const timer = timeoutMs
          ? setTimeout(() => {
              ch.signal('KILL');
              ch.close();
              settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${what} did not finish within ${timeoutMs} ms`)));
            }, timeoutMs)
          : undefined;
        const unsubscribe = this.conn.whenClosed((why) => settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${what}: connection lost while the command ran (${why}); its outcome on the node is unknown`))));
        ch.on('data', (c: Buffer) => (out.push(c), opts.onStdout?.(c)));
        ch.stderr.on('data', (c: Buffer) => err.push(c));
        // ssh2 passes the exit status to 'close' (an 'exit' listener attached after the exec callback could miss it).
        ch.on('close', (c?: number | null, signal?: string) => {
          const code = typeof c === 'number' ? c : signal ? signalExitCode(signal) : undefined;
          if (code === undefined) settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${what}: the channel closed without an exit status (connection lost?)`)));
          else settle(() => resolve({ code, stdout: out.text(), stderr: err.text() }));
        });
        ch.on('error', (e: Error) => settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${what}: ${e.message}`, { cause: e }))));
        feed(ch, opts.input);
      });
    });
  }

  get fileTransfer(): FileTransfer | undefined {
    return this.conn.noSftp ? 'exec' : this.usedSftp ? 'sftp' : undefined;
  }

  private usedSftp = false;
  private readonly execBound = (argv: string[], opts?: ExecOptions) => this.exec(argv, opts);

  readFile(path: string): Promise<Buffer | undefined> {
    return this.conn.guard(this.files().then((s) => (s ? this.readFileRaw(s, path) : readFileByExec(this.execBound, this.node, path))), `${this.node}: cannot read ${path}`);
  }

  writeFiles(files: { path: string; data: Buffer; mode?: number }[]): Promise<void> {
    return this.conn.guard(this.files().then((s) => (s ? this.writeFilesRaw(s, files) : writeFilesByExec(this.execBound, this.node, files))), `${this.node}: upload of ${files.length} file(s)`);
  }

  stat(path: string): Promise<StatResult | undefined> {
    return this.conn.guard(this.files().then((s) => (s ? this.statRaw(s, path) : statByExec(this.execBound, this.node, path))), `${this.node}: cannot stat ${path}`);
  }

  /** The connection's SFTP session, or undefined when the server has none (then: exec channels). */
  private async files(): Promise<SFTPWrapper | undefined> {
    if (this.conn.noSftp) return undefined;
    try {
      const s = await this.conn.sftp();
      this.usedSftp = true;
      return s;
    } catch (e) {
      if (this.conn.noSftp) return undefined;
      throw e;
    }
  }

  private async readFileRaw(sftp: SFTPWrapper, path: string): Promise<Buffer | undefined> {
    this.turns++;
    return new Promise((resolve, reject) => {
      sftp.readFile(path, (err, data) => {
        if (!err) return resolve(data);
        if ((err as { code?: number }).code === SFTP_NO_SUCH_FILE) return resolve(undefined);
        reject(this.sftpError('read', path, err));
      });
    });
  }

  private async writeFilesRaw(sftp: SFTPWrapper, files: { path: string; data: Buffer; mode?: number }[]): Promise<void> {
    this.turns++;
    const made = new Set<string>();
    for (const dir of [...new Set(files.map((f) => posix.dirname(f.path)))].sort()) await this.mkdirp(sftp, dir, made);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++];
        await call(sftp, 'writeFile', f.path, f.data, { mode: f.mode ?? 0o644 }).catch((e) => Promise.reject(this.sftpError('write', f.path, e)));
        // The server creates files through its umask and keeps an existing file's mode: set it.
        if (f.mode !== undefined) await call(sftp, 'chmod', f.path, f.mode).catch((e) => Promise.reject(this.sftpError('chmod', f.path, e)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_PARALLEL, files.length) }, worker));
  }

  private async statRaw(sftp: SFTPWrapper, path: string): Promise<StatResult | undefined> {
    this.turns++;
    let s: Stats;
    try {
      s = await call<Stats>(sftp, 'lstat', path);
    } catch (e) {
      if ((e as { code?: number }).code === SFTP_NO_SUCH_FILE) return undefined;
      throw this.sftpError('stat', path, e);
    }
    const type = s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
    const target = type === 'symlink' ? await call<string>(sftp, 'readlink', path).catch((e) => Promise.reject(this.sftpError('readlink', path, e))) : undefined;
    return { type, size: s.size, mode: s.mode & 0o7777, ...(target !== undefined ? { target } : {}) };
  }

  async http(req: HttpRequest): Promise<HttpResponse> {
    this.turns++;
    const ch = await this.conn.forward(req.host, req.port, req.timeoutMs);
    return this.conn.guard(httpOver(this.node, ch, req), `${this.node}: ${req.method} ${req.host}:${req.port}${req.path}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  private async mkdirp(sftp: SFTPWrapper, dir: string, made: Set<string>): Promise<void> {
    if (made.has(dir) || dir === '/' || dir === '.') return;
    const st = await call<Stats>(sftp, 'stat', dir).catch(() => undefined);
    if (st?.isDirectory()) return void made.add(dir);
    if (st) throw new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: ${dir} exists and is not a directory`);
    await this.mkdirp(sftp, posix.dirname(dir), made);
    await call(sftp, 'mkdir', dir, { mode: 0o755 }).catch(async (e) => {
      const again = await call<Stats>(sftp, 'stat', dir).catch(() => undefined);
      if (!again?.isDirectory()) throw this.sftpError('mkdir', dir, e);
    });
    made.add(dir);
  }

  private sftpError(op: string, path: string, e: unknown): EdgectlError {
    if (this.conn.closed) return new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot ${op} ${path}: connection lost (${this.conn.closeReason})`, { cause: e });
    return new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot ${op} ${path}: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}

/** Promisifies one SFTPWrapper method (callback last). */
function call<T = void>(sftp: SFTPWrapper, method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    (sftp as unknown as Record<string, (...a: unknown[]) => void>)[method].call(sftp, ...args, (err: Error | undefined, v: T) => (err ? reject(err) : resolve(v)));
  });
}
