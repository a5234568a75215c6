import path from 'node:path';
import { lstatSync } from 'node:fs';
import { execa } from 'execa';
import { EdgectlError } from '../errors.js';

/** What a DNS-01 hook is told, in its environment (never on a command line another user can read). */
export interface HookCall {
  action: 'set' | 'clear';
  /** The name being validated (without "*." for a wildcard). */
  domain: string;
  /** The TXT record to set: _acme-challenge.<domain> (no trailing dot). */
  record: string;
  /** The TXT value (the digest of the key authorization: not a secret). */
  value: string;
}

const MAX_OUTPUT = 400;

/** The hook's program: a bare name (PATH), an absolute path, or ./PATH inside the fleet repo. */
export function hookProgram(argv0: string, fleetRoot: string): string {
  if (!argv0.startsWith('./')) return argv0;
  const root = path.resolve(fleetRoot);
  const abs = path.resolve(root, argv0);
  if (!abs.startsWith(root + path.sep)) throw new EdgectlError('EDGECTL_ACME', `the DNS-01 hook ${argv0} is not inside the fleet repo`);
  // A file the fleet commits, run on the operator's machine: its own bytes only, never through a
  // link (a committed symlink could name any program), on no path that climbs through one either.
  let dir = root;
  for (const part of path.relative(root, abs).split(path.sep)) {
    dir = path.join(dir, part);
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      throw new EdgectlError('EDGECTL_ACME', `the DNS-01 hook ${argv0} is not in the fleet repo (${path.relative(root, dir)} is missing)`);
    }
    if (st.isSymbolicLink()) throw new EdgectlError('EDGECTL_ACME', `the DNS-01 hook ${argv0} goes through a symbolic link (${path.relative(root, dir)}): refused, a hook in the fleet must be a file of its own`);
    if (dir === abs && !st.isFile()) throw new EdgectlError('EDGECTL_ACME', `the DNS-01 hook ${argv0} is not a regular file`);
  }
  return abs;
}

/**
 * Runs the Fleet's spec.acme.dns01.hook once, without a shell (its argv as written), in the fleet
 * directory, with EDGECTL_ACME_ACTION/_DOMAIN/_RECORD/_VALUE added to edgectl's environment (the
 * hook's DNS provider credentials come from there). A non-zero exit, a signal or the timeout fails
 * the issuance of that certificate.
 */
export async function runHook(argv: readonly string[], fleetRoot: string, call: HookCall, timeoutSeconds = 120): Promise<void> {
  const program = hookProgram(argv[0], fleetRoot);
  const r = await execa(program, argv.slice(1), {
    cwd: fleetRoot,
    shell: false,
    reject: false,
    stdin: 'ignore',
    all: true,
    timeout: timeoutSeconds * 1000,
    env: { EDGECTL_ACME_ACTION: call.action, EDGECTL_ACME_DOMAIN: call.domain, EDGECTL_ACME_RECORD: call.record, EDGECTL_ACME_VALUE: call.value },
  });
  if (r.exitCode === 0 && !r.timedOut) return;
  const out = String(r.all ?? '').replace(/[^\x20-\x7e\n]/g, '?').trim();
  const why = r.timedOut ? `did not finish within ${timeoutSeconds} s` : r.signal ? `was killed by ${r.signal}` : r.failed && r.exitCode === undefined ? `could not be started (${r.shortMessage ?? 'no such program?'})` : `exited with status ${r.exitCode}`;
  throw new EdgectlError('EDGECTL_ACME', `the DNS-01 hook (${argv[0]}, ${call.action} ${call.record}) ${why}${out ? `: ${out.length > MAX_OUTPUT ? out.slice(-MAX_OUTPUT) : out}` : ''}`, {
    hint: `Run it by hand: EDGECTL_ACME_ACTION=${call.action} EDGECTL_ACME_DOMAIN=${call.domain} EDGECTL_ACME_RECORD=${call.record} EDGECTL_ACME_VALUE=… ${argv.join(' ')}`,
  });
}
