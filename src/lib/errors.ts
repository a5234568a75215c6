/**
 * Coded errors. The code is stable API (scripts may match on it); the message may change.
 * An error without a code reaching the CLI is a bug, and only then is a stack trace shown.
 */
export const ERROR_HINTS = {
  EDGECTL_USAGE: 'Run the command with --help to see its flags.',
  EDGECTL_FLEET_NOT_FOUND: 'Pass --fleet DIR pointing at a fleet repo (a directory of edgectl/v1 YAML files).',
  EDGECTL_FLEET_INVALID: 'Run `edgectl validate` to see every problem with file and line.',
  EDGECTL_GIT: 'Check that the fleet is a git repository and that the revision exists (`git log --oneline`).',
  EDGECTL_RENDER: 'The message says what could not be rendered. A fleet that passes `edgectl validate` should render: if this one does, it is a bug in edgectl; please report it.',
  EDGECTL_CHECK_FAILED: 'The tool\'s own output above names the file and line that failed.',
  EDGECTL_OUTPUT: 'The output (--out) must be a directory, or a path that can be created, on a writable disk with free space; render again once fixed.',
  EDGECTL_TRANSPORT: 'Check the node\'s address, ssh settings and relays (`via`).',
  EDGECTL_HOSTKEY_UNKNOWN: 'Verify the fingerprint out of band, then run `edgectl trust NODE` (or apply with --accept-new).',
  EDGECTL_HOSTKEY_CHANGED: 'The node\'s host key differs from the recorded one. If the node was reinstalled, remove the old key from known_hosts after verifying the new fingerprint.',
  EDGECTL_HOSTKEY_CONFLICT: 'The fleet pins a host key that your own ~/.ssh/known_hosts does not hold for that host. Verify the fingerprint out of band before changing either.',
  EDGECTL_KEY_FILE: 'Identity and known_hosts files must be regular files (an identity file at most 64 KiB), not devices, FIFOs or directories.',
  EDGECTL_LOCKED: 'Another apply holds the node\'s lock; wait for it, or remove a stale lock after it expires.',
  EDGECTL_PLAN_STALE: 'The node changed since the plan was made; run `edgectl plan --out` again.',
  EDGECTL_PLAN_INVALID: 'The plan file was edited, truncated or made by another tool: edgectl applies a saved plan only as `edgectl plan --out` wrote it. Make a new one.',
  EDGECTL_RELEASE_INVALID: 'A release name is 20 hex digits (the start of its manifest digest). One that is not comes from an edited plan or a hand-made entry in the node\'s releases/ directory.',
  EDGECTL_FLEET_DIRTY: 'Commit the changes (`git status` lists them) and apply again, or pass --allow-dirty to apply the working tree as it is (its releases record the commit as COMMIT-dirty).',
  EDGECTL_NOT_CONFIRMED: 'Pass --yes to apply without asking (required when not on a terminal).',
  EDGECTL_AGENT_CONFIG: 'Check the agent configuration: its flags, agent.json and the files they name (`edgectl agent --help`).',
  EDGECTL_AGENT_UNREACHABLE: 'Is the agent running (systemctl status edgectl-agent on the node), with its admin API where --admin or the fleet says, and its admin token readable?',
  EDGECTL_AGENT_REFUSED: 'The agent answered but refused or failed the request: its message says why (a wrong admin token is a 401).',
  EDGECTL_BOOTSTRAP: 'The message says what the node lacks or what failed there (docs/bootstrap.md): a Node.js >= 20 (`--runtime PATH`), systemd, bash, or a new agent that does not come up healthy (/healthz with its version, rolled back).',
  EDGECTL_HUB_DB: 'Check --hub-db (or EDGECTL_HUB_DB): a postgres:// URL of the hub\'s database, reachable from here, whose user may read edgectl_heartbeats_latest (the hub\'s PostgreSQL sink creates it).',
  EDGECTL_DIR_NOT_EMPTY: 'Choose a new or empty directory: `edgectl init` never overwrites files.',
  EDGECTL_SECRET: 'A secret of the fleet (an age-encrypted *.age file) could not be decrypted or written: the message names the file. Decrypting needs an identity whose public key is in spec.secrets.recipients (--age-identity FILE, EDGECTL_AGE_IDENTITY_FILE or ~/.config/edgectl/age/keys.txt).',
  EDGECTL_ACME: 'Issuing a certificate failed: the message says at which step (the ACME directory, the account, the DNS-01 hook, the order). Check the Fleet\'s spec.acme and run the hook by hand with the environment docs/tls.md lists.',
  EDGECTL_INTERNAL: 'This is a bug in edgectl; please report it with the command you ran.',
} as const;

export type ErrorCode = keyof typeof ERROR_HINTS;

export class EdgectlError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly exitCode: number;
  readonly detail?: string;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; exitCode?: number; detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'EdgectlError';
    this.code = code;
    this.hint = opts.hint ?? ERROR_HINTS[code];
    this.exitCode = opts.exitCode ?? 1;
    this.detail = opts.detail;
  }
}

export function isEdgectlError(err: unknown): err is EdgectlError {
  return err instanceof EdgectlError;
}

/** Message of any thrown value, for results and logs (never a stack). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The message with those of its causes after it ("Database failed to open: IO error: …: No space
 * left on device"): abstract-level keeps LevelDB's reason as the cause of its own generic error.
 * At most four deep; a cause that says nothing new is left out.
 */
export function errorChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    const m = errorMessage(e);
    if (!parts.some((p) => p.includes(m))) parts.push(m);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}
