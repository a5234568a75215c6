import { EdgectlError } from '../errors.js';
import { tarArchive } from './tar.js';
import type { ExecOptions, ExecResult, StatResult } from './types.js';

/**
 * File calls over plain exec channels, for nodes whose sshd has no SFTP subsystem (dropbear on
 * OpenWrt-class nodes, hardened OpenSSH configs): a read is `cat`, a stat one `stat`, and a
 * write of many files is one tar stream into `tar -x` (Ansible's "piped" transfer, in one round
 * trip instead of one per file). Paths reach the node as positional parameters, never as text.
 */
type Exec = (argv: string[], opts?: ExecOptions) => Promise<ExecResult>;

/** Exit 44: no such file (distinct from cat's own failures). */
const READ_SCRIPT = '[ -e "$1" ] || [ -L "$1" ] || exit 44; exec cat -- "$1"';

/** One line: "<type> <size> <octal mode>", then the link target for a symlink. Exit 44: missing. */
const STAT_SCRIPT = `
[ -e "$1" ] || [ -L "$1" ] || exit 44
stat -c '%F|%s|%a' -- "$1" || exit 1
[ -L "$1" ] && readlink -- "$1"
exit 0
`;

/** Extracts a tar from stdin at /, keeping the archive's modes and not its owners. */
const WRITE_SCRIPT = 'exec tar -x -p --no-same-owner -f - -C /';

export async function readFileByExec(exec: Exec, node: string, path: string): Promise<Buffer | undefined> {
  const r = await execRaw(exec, ['sh', '-c', READ_SCRIPT, 'edgectl', path]);
  if (r.code === 44) return undefined;
  if (r.code !== 0) throw new EdgectlError('EDGECTL_TRANSPORT', `${node}: cannot read ${path}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdoutBytes;
}

export async function statByExec(exec: Exec, node: string, path: string): Promise<StatResult | undefined> {
  const r = await exec(['sh', '-c', STAT_SCRIPT, 'edgectl', path], { timeoutMs: 30_000 });
  if (r.code === 44) return undefined;
  const [line = '', target] = r.stdout.split('\n');
  const m = /^([^|]+)\|(\d+)\|([0-7]+)$/.exec(line);
  if (r.code !== 0 || !m) throw new EdgectlError('EDGECTL_TRANSPORT', `${node}: cannot stat ${path}: ${r.stderr.trim() || `unexpected answer ${JSON.stringify(line.slice(0, 80))}`}`);
  const kind = m[1];
  const type = kind === 'symbolic link' ? 'symlink' : kind === 'directory' ? 'dir' : kind.startsWith('regular') ? 'file' : 'other';
  return { type, size: Number(m[2]), mode: parseInt(m[3], 8), ...(type === 'symlink' ? { target: target ?? '' } : {}) };
}

export async function writeFilesByExec(exec: Exec, node: string, files: { path: string; data: Buffer; mode?: number }[]): Promise<void> {
  if (files.length === 0) return;
  for (const f of files) if (!f.path.startsWith('/')) throw new EdgectlError('EDGECTL_INTERNAL', `${node}: ${f.path} is not an absolute path`);
  const tar = tarArchive(files.map((f) => ({ path: f.path.slice(1), data: f.data, mode: f.mode ?? 0o644 })));
  const r = await exec(['sh', '-c', WRITE_SCRIPT], { input: tar, timeoutMs: 300_000 });
  if (r.code !== 0) throw new EdgectlError('EDGECTL_TRANSPORT', `${node}: upload of ${files.length} file(s) through tar failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
}

/** Runs argv and keeps stdout as bytes (a file's content is not text). */
async function execRaw(exec: Exec, argv: string[]): Promise<ExecResult & { stdoutBytes: Buffer }> {
  const chunks: Buffer[] = [];
  const r = await exec(argv, { timeoutMs: 120_000, onStdout: (c) => chunks.push(c) });
  return { ...r, stdoutBytes: Buffer.concat(chunks) };
}
