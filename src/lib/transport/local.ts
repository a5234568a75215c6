import { spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { constants } from 'node:os';
import { chmod, lstat, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { EdgectlError } from '../errors.js';
import { httpOver } from './http-over.js';
import { OutputBuffer, settleOnce } from './output-buffer.js';
import type { ExecOptions, ExecResult, HttpRequest, HttpResponse, StatResult, Transport } from './types.js';

/**
 * A directory on this machine acts as the node: commands run here (argv straight to execve,
 * no shell), files are local paths, HTTP goes to host:port from this machine. Used by the
 * embedded default, single-box installs and tests.
 */
export class LocalTransport implements Transport {
  readonly fileTransfer = 'local' as const;
  turns = 0;
  constructor(readonly node: string, readonly root?: string, private readonly defaults: { execTimeoutMs?: number } = {}) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) return Promise.reject(new EdgectlError('EDGECTL_INTERNAL', 'exec needs a command'));
    if (argv.some((a) => a.includes('\0'))) return Promise.reject(new EdgectlError('EDGECTL_TRANSPORT', 'a command argument contains a NUL byte, which no command line can carry'));
    const timeoutMs = opts.timeoutMs ?? this.defaults.execTimeoutMs;
    this.turns++;
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
      const out = new OutputBuffer();
      const err = new OutputBuffer();
      let timer: NodeJS.Timeout | undefined;
      const settle = settleOnce(() => clearTimeout(timer));
      if (timeoutMs) {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: \`${argv[0]}\` did not finish within ${timeoutMs} ms`)));
        }, timeoutMs);
      }
      child.stdout.on('data', (c: Buffer) => (out.push(c), opts.onStdout?.(c)));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e: NodeJS.ErrnoException) => {
        // Like a shell: a missing program is exit 127, not an exception.
        if (e.code === 'ENOENT') settle(() => resolve({ code: 127, stdout: '', stderr: `${argv[0]}: command not found\n` }));
        else settle(() => reject(new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot run \`${argv[0]}\`: ${e.message}`, { cause: e })));
      });
      child.on('close', (code, signal) => settle(() => resolve({ code: code ?? (signal ? signalExitCode(signal) : 1), stdout: out.text(), stderr: err.text() })));
      child.stdin.on('error', () => {}); // EPIPE when the command exits without reading its input
      feed(child.stdin, opts.input);
    });
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    this.turns++;
    try {
      return await readFile(path);
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  async writeFiles(files: { path: string; data: Buffer; mode?: number }[]): Promise<void> {
    this.turns++;
    for (const f of files) {
      try {
        await mkdir(dirname(f.path), { recursive: true });
        await writeFile(f.path, f.data, { mode: f.mode ?? 0o644 });
        if (f.mode !== undefined) await chmod(f.path, f.mode); // writeFile's mode is filtered by umask
      } catch (e) {
        throw new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot write ${f.path}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  async stat(path: string): Promise<StatResult | undefined> {
    this.turns++;
    try {
      const s = await lstat(path);
      const type = s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
      return { type, size: s.size, mode: s.mode & 0o7777, ...(type === 'symlink' ? { target: await readlink(path) } : {}) };
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw new EdgectlError('EDGECTL_TRANSPORT', `${this.node}: cannot stat ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  async http(req: HttpRequest): Promise<HttpResponse> {
    this.turns++;
    const sock = tcpConnect({ host: req.host, port: req.port });
    return httpOver(this.node, sock, req);
  }

  async close(): Promise<void> {}
}

export function feed(stdin: NodeJS.WritableStream, input: ExecOptions['input']): void {
  if (input === undefined) return void stdin.end();
  if (typeof input === 'string' || Buffer.isBuffer(input)) return void stdin.end(input);
  const r = input instanceof Readable ? input : Readable.from(input as AsyncIterable<Buffer>);
  r.on('error', (e) => (stdin as unknown as { destroy(e: Error): void }).destroy(e));
  r.pipe(stdin);
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** A shell's exit status for a command killed by `sig` ('SIGTERM', or 'TERM' as SSH names it): 128 + its number. */
export function signalExitCode(sig: string): number {
  const name = (sig.startsWith('SIG') ? sig : `SIG${sig}`) as NodeJS.Signals;
  return 128 + (constants.signals[name] ?? 0);
}
