/**
 * The one interface between edgectl and a node. Two implementations: SSH (ssh2, through relay
 * chains) and local (a directory on this machine is the node). Everything apply, plan, drift,
 * rollback and spool do to a node goes through it.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes for the command's standard input (e.g. a tar stream). */
  input?: Buffer | string | NodeJS.ReadableStream;
  timeoutMs?: number;
  cwd?: string;
  /** Each chunk of standard output as it arrives (progress of a long node-side script); stdout is still collected. */
  onStdout?: (chunk: Buffer) => void;
}

export type FileTransfer = 'sftp' | 'exec' | 'local';

export interface StatResult {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number;
  /** For symlinks: the link's target as stored. */
  target?: string;
}

export interface HttpRequest {
  /** Host and port as seen from the node (e.g. 127.0.0.1:80); reached through the transport. */
  host: string;
  port: number;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface Transport {
  readonly node: string;
  /**
   * The node's root directory as paths on the node see it: the fleet's resolved root over SSH,
   * <localRoot>/<node> for the embedded local mode. Transports from createConnector always set it.
   */
  readonly root?: string;
  /**
   * How files cross to the node when the transport's own file calls are used: "sftp" (the SSH
   * subsystem), "exec" (streamed through plain exec channels: the node has no SFTP), "local".
   * Undefined until the first file call decides it.
   */
  readonly fileTransfer?: FileTransfer;
  /** Request/response turns so far (each exec, HTTP request, SFTP call or upload): what a slow link pays for. */
  readonly turns?: number;
  /** Runs argv on the node. Each argument is passed as one word (shell-quoted by SSH, never interpreted). */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Writes files, creating parent directories. Not atomic by itself: callers stage and rename. */
  writeFiles(files: { path: string; data: Buffer; mode?: number }[]): Promise<void>;
  /** lstat: does not follow symlinks. Undefined when the path does not exist. */
  stat(path: string): Promise<StatResult | undefined>;
  /** An HTTP request from the node's point of view (SSH: direct-tcpip through the connection). */
  http(req: HttpRequest): Promise<HttpResponse>;
  close(): Promise<void>;
}
