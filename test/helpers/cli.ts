import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import { BIN, REPO } from './paths.js';

/** The built CLI run as a process (`npm run build` first): never through a TTY, stdin at EOF. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Killed at the timeout: a hang, not an exit. */
  timedOut: boolean;
}

export interface CliOptions {
  cwd?: string;
  /** Merged over the environment; undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Over SSH: HOME here and no ssh-agent, so the user's ~/.ssh never takes part in a test. */
  home?: string;
  input?: string;
  timeout?: number;
  /** A command the CLI runs under, e.g. ['prlimit', '--data=…']. */
  wrap?: string[];
}

/**
 * The environment a pipe in CI would give the CLI, minus what changes its output: colour and
 * GitHub annotations only when a test asks for them, no stack traces unless asked.
 */
function invocation(args: string[], o: CliOptions) {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined, GITHUB_ACTIONS: undefined, EDGECTL_DEBUG: undefined };
  if (o.home) Object.assign(env, { HOME: o.home, SSH_AUTH_SOCK: '' });
  Object.assign(env, o.env);
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const argv = [...(o.wrap ?? []), process.execPath, BIN, ...args];
  return { file: argv[0], args: argv.slice(1), cwd: o.cwd ?? REPO, env: env as NodeJS.ProcessEnv, input: o.input ?? '', timeout: o.timeout ?? 120_000 };
}

export async function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const i = invocation(args, opts);
  const r = await execa(i.file, i.args, { cwd: i.cwd, env: i.env, extendEnv: false, input: i.input, timeout: i.timeout, reject: false });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: r.timedOut };
}

/** The same, synchronous: for tests that read one run's result inline. It blocks the test runner, hence the shorter timeout. */
export function cliSync(args: string[], opts: CliOptions = {}): CliResult {
  const i = invocation(args, { timeout: 30_000, ...opts });
  const r = spawnSync(i.file, i.args, { cwd: i.cwd, env: i.env, input: i.input, timeout: i.timeout, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' };
}

export function json<T = any>(r: { stdout: string; stderr: string; code: number }): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  }
}
