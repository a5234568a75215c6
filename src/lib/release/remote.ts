import { EdgectlError, errorMessage } from '../errors.js';
import type { ExecResult, Transport } from '../transport/types.js';

/**
 * Node-side steps are small fixed POSIX sh scripts run as `sh -c SCRIPT edgectl ARG...`: the
 * script text is a constant of this module and every value reaches it as a positional
 * parameter, never spliced into the text. One script is one round trip, which is what makes a
 * fleet-wide apply cheap over high-latency links (the cost is per task, not per byte).
 */
export async function runScript(t: Transport, script: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
  return t.exec(['sh', '-c', script, 'edgectl', ...args], { input: opts.input, timeoutMs: opts.timeoutMs });
}

/** Like runScript, but a non-zero exit is an error carrying the node's own output. */
export async function mustRun(t: Transport, what: string, script: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
  const r = await runScript(t, script, args, opts);
  if (r.code !== 0) throw new NodeStepError(`${what} failed (exit ${r.code})`, (r.stderr || r.stdout).trim());
  return r;
}

/** A step that failed on the node: the message is ours, `output` is the node's own words. */
export class NodeStepError extends Error {
  constructor(message: string, readonly output: string) {
    super(message);
    this.name = 'NodeStepError';
  }
}

export function outputOf(e: unknown): string | undefined {
  return e instanceof NodeStepError ? e.output : e instanceof EdgectlError ? e.detail : undefined;
}

/** A failure as one line for a node's result: the message, and the node's own output when it gave one. */
export function failureText(e: unknown): string {
  const more = outputOf(e);
  return errorMessage(e) + (more ? `: ${more}` : '');
}

/**
 * Shell function: prints the pid in pid file $1 if it names a live nginx process. A pid reused
 * after a reboot is not nginx; a killed master that its parent has not reaped yet (a zombie, as
 * after a power cut of the service) still has /proc/<pid>/comm "nginx" but serves nothing, and a
 * HUP sent to it "succeeds": neither counts as running. Shell builtins only: each check used to
 * fork four processes (head, tr, cat, sed), and a fork and exec cost about 10 ms on the test VM.
 * It leaves the pid in _lnp as well, for a caller that wants it without a subshell.
 */
export const LIVE_NGINX_FN = `
live_nginx() {
  # Its own names (sh has no local): the one-shot script keeps its staging dir in s and c.
  _lnp=; read -r _lnp 2>/dev/null <"$1"
  case "$_lnp" in ""|*[!0-9]*) return 1;; esac
  _lnc=; read -r _lnc 2>/dev/null <"/proc/$_lnp/comm" || return 1
  case "$_lnc" in nginx*) ;; *) return 1;; esac
  _lns=; while read -r _lnk _lnv; do [ "$_lnk" = State: ] && { _lns=$_lnv; break; }; done 2>/dev/null <"/proc/$_lnp/status"
  case "$_lns" in Z*|X*|"") return 1;; esac
  echo "$_lnp"
}
`;

/**
 * Shell functions for nginx's graceful reload. The master starts new workers, then tells the old
 * ones to quit; until an old worker takes that signal it still accepts new connections on the
 * shared listening sockets and answers them with the old config. So one answer with the new config
 * id (a new worker's) does not mean the old config is gone: `nginx_workers MASTER` lists the
 * workers that take connections before the reload, `workers_quit TRIES PID...` waits (about 0.05 s
 * a try) until each has exited or titles itself "shutting down", which nginx sets as it closes its
 * listening sockets. Builtins only (the children file, or a scan of /proc where the kernel has none).
 */
/** An old worker that did not take the reload's quit signal in time (both paths: `pid` may be a shell expansion). */
export function lingeringNote(pid: string): string {
  return `an old nginx worker (pid ${pid}) still took connections 5 s after the reload`;
}

export const NGINX_WORKERS_FN = `
children_scan() { # pid -> _nwc (its children, from every process's stat: the kernel has no children file)
  _nwc=
  for _nws in /proc/[0-9]*/stat; do
    _nwl=; read -r _nwl 2>/dev/null <"$_nws" || continue
    _nwl=\${_nwl##*) }; _nwl=\${_nwl#* }; [ "\${_nwl%% *}" = "$1" ] || continue
    _nwp=\${_nws#/proc/}; _nwc="$_nwc \${_nwp%/stat}"
  done
}
nginx_workers() { # master pid -> nw (the pids, space-separated)
  _nwm=$1; _nwc=; nw=
  if [ -r "/proc/$_nwm/task/$_nwm/children" ]; then read -r _nwc 2>/dev/null <"/proc/$_nwm/task/$_nwm/children"
  else children_scan "$_nwm"
  fi
  for _nwp in $_nwc; do
    _nwt=; read -r _nwt 2>/dev/null <"/proc/$_nwp/cmdline" # NUL-padded, no newline: read fails at its end, having read it
    case "$_nwt" in *"is shutting down"*) ;; *"worker process"*) nw="$nw $_nwp";; esac
  done
  nw=\${nw# }
}
workers_quit() { # tries pid... -> status 1 with _wqp the worker still taking connections
  _wqn=$1; shift
  for _wqp in "$@"; do
    while :; do
      _wqt=; read -r _wqt 2>/dev/null <"/proc/$_wqp/cmdline" # gone: empty
      case "$_wqt" in *"is shutting down"*) break;; *"worker process"*) ;; *) break;; esac
      _wqn=$((_wqn - 1)); [ "$_wqn" -gt 0 ] || return 1
      sleep 0.05
    done
  done
}
`;

/**
 * Reads everything about a node's releases in one round trip. Args: root, then optionally a
 * nonce and a release name: when current is that release, its files are checked against the
 * checklist on stdin (sha256sum's lines) and listed, so a hand edit shows in the same turn.
 * Sections after the head are delimited by the nonce: nothing a node holds can forge them.
 */
export const STATE_SCRIPT = `
cd "$1" 2>/dev/null || { echo "noroot"; command -v bash >/dev/null 2>&1 && printf 'cap\\tbash\\n'; exit 0; }
# Both links in one find (current<TAB>target, good<TAB>target), not a readlink each. Started at
# . (always there) so that its status means something: a find without -printf is an error, not a
# node without releases.
${LIVE_NGINX_FN}find . -maxdepth 1 \\( -name current -o -name good \\) -type l -printf '%f\\t%l\\n' 2>/dev/null || { echo "nolinks"; exit 0; }
root=$1 nonce=$2 want=$3
for f in .edgectl/rel/*; do
  [ -f "$f" ] && { l=; IFS= read -r l <"$f"; printf 'rec\\t%s\\t%s\\n' "\${f##*/}" "$l"; }
done
l=; [ -f .edgectl/intent.json ] && { IFS= read -r l <.edgectl/intent.json; printf 'intent\\t%s\\n' "$l"; }
l=; [ -f .edgectl/lock/holder ] && { IFS= read -r l <.edgectl/lock/holder; printf 'lock\\t%s\\n' "$l"; }
live_nginx run/nginx.pid >/dev/null && echo "nginx\\trunning"
command -v bash >/dev/null 2>&1 && printf 'cap\\tbash\\n'
# One stat for every release (activation time = the directory's mtime), not a fork per release.
set --
for d in releases/*/; do [ -f "$d/manifest.json" ] && set -- "$@" "$d"; done
[ $# -gt 0 ] && stat -c 'release %.3Y %n' -- "$@"
# current -ef releases/<want>: the link leads to that release's directory (test's -ef follows it).
if [ -n "$want" ] && [ current -ef "releases/$want" ] && cd current 2>/dev/null; then
  echo "--$nonce-verify--"
  sha256sum --quiet --strict -c - 2>/dev/null
  echo "--files--"
  find . -mindepth 1 -printf '%y %m %P\\n'
  echo "--$nonce-end--"
  cd "$root"
fi
echo "manifest"
cat current/manifest.json 2>/dev/null
exit 0
`;

/** Takes the node's lock (mkdir is atomic). Args: root, holder JSON. Exit 3 = held, holder on stdout. */
export const LOCK_SCRIPT = `
mkdir -p "$1/.edgectl" || exit 1
if mkdir "$1/.edgectl/lock" 2>/dev/null; then
  printf '%s\\n' "$2" > "$1/.edgectl/lock/holder.tmp" && mv -f "$1/.edgectl/lock/holder.tmp" "$1/.edgectl/lock/holder" && exit 0
  exit 1
fi
cat "$1/.edgectl/lock/holder" 2>/dev/null
exit 3
`;

/** Breaks an expired lock, only if it still has the holder we judged expired. Args: root, holder line. */
export const BREAK_LOCK_SCRIPT = `
cd "$1/.edgectl" || exit 1
[ "$(cat lock/holder 2>/dev/null)" = "$2" ] || exit 3
b="lock.broken.$$"
mv -T lock "$b" 2>/dev/null || exit 3
rm -rf "$b"
`;

/** Releases the lock if it is still ours. Args: root, `"id":"<our id>"`. */
export const UNLOCK_SCRIPT = `
cd "$1/.edgectl" 2>/dev/null || exit 0
grep -qF -- "$2" lock/holder 2>/dev/null || exit 0
b="lock.free.$$"
mv -T lock "$b" && rm -rf "$b"
`;

/** Pushes our lock's expiry forward if it is still ours. Args: root, `"id":"<our id>"`, new holder JSON. Exit 3: not ours. */
export const RENEW_LOCK_SCRIPT = `
cd "$1/.edgectl" 2>/dev/null || exit 3
grep -qF -- "$2" lock/holder 2>/dev/null || exit 3
printf '%s\n' "$3" > lock/holder.tmp && mv -f lock/holder.tmp lock/holder
`;
