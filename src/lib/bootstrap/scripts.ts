/**
 * The node side of bootstrap: two POSIX sh scripts, each one exec (docs/bootstrap.md). Arguments
 * reach them as positional parameters, never as text; every value was validated before.
 */

/**
 * $1 root, $2 runtime (empty: find node). One "key value" line each: arch, libc, runtime,
 * version (the runtime's), glibc (its version, on glibc), systemd yes|no, bash yes|no, systemdv (the
 * first line of `systemctl --version`), current (agent version
 * linked), have VERSION (one line per agent version complete on the node), rt DIGEST (one per
 * runtime copied there by an earlier bootstrap), active (the service's state).
 */
export const PROBE_SCRIPT = `
r="$1"; rt="$2"
printf 'arch %s\\n' "$(uname -m)"
if ldd --version 2>&1 | grep -qi musl; then echo 'libc musl'; else echo 'libc glibc'; fi
g=$(ldd --version 2>/dev/null | head -n 1); case "$g" in *GLIBC*|*'GNU libc'*) printf 'glibc %s\n' "\${g##* }";; esac
if [ -z "$rt" ]; then
  rt=$(command -v node 2>/dev/null || true)
  for c in /usr/local/bin/node /usr/bin/node; do [ -z "$rt" ] && [ -x "$c" ] && rt="$c"; done
fi
printf 'runtime %s\\n' "$rt"
[ -n "$rt" ] && [ -x "$rt" ] && printf 'version %s\\n' "$("$rt" --version 2>/dev/null | head -n 1)"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then echo 'systemd yes'; else echo 'systemd no'; fi
if command -v bash >/dev/null 2>&1; then echo 'bash yes'; else echo 'bash no'; fi
printf 'systemdv %s\\n' "$(systemctl --version 2>/dev/null | head -n 1)"
printf 'current %s\\n' "$(readlink "$r/agent/current" 2>/dev/null)"
for d in "$r"/agent/runtime/*/node; do [ -x "$d" ] && { d=\${d%/node}; echo "rt \${d##*/}"; }; done
for d in "$r"/agent/*/.complete; do [ -f "$d" ] && { d=\${d%/.complete}; echo "have \${d##*/}"; }; done
printf 'active %s\\n' "$(systemctl is-active edgectl-agent.service 2>/dev/null)"
exit 0
`;

/**
 * $1 root, $2 version, $3 unit path, $4 and $5 the digest (directory name) and sha256 of a copied
 * runtime (empty: none), $6 GATE_SCRIPT, $7 an upgrade id (16 hex digits: run the gate detached;
 * empty: in this connection); stdin: a tar of .incoming-<version>/ (absent when the node has that
 * version), .incoming-runtime-<digest>/node (a runtime to copy, absent when there) and .unit.new.
 * Checks the upload against its SHA256SUMS, renames it into place, swaps agent/current with
 * rename(2) (agent/previous keeps the one before, older ones go), creates the node's credential
 * if it has none (on the node: it never leaves it; only its sha256 is printed), installs the
 * unit, enables it, and when anything the agent runs changed, runs the gate (GATE_SCRIPT: restart,
 * health gate, rollback). With an id the gate runs as a transient systemd unit after this script
 * has exited, writing <root>/run/upgrade-<id>/{out,err,code} (RESULT_SCRIPT reads them), and this
 * prints "result detached". Lines: "changed WHAT", "credential SHA256", "result
 * installed|unchanged|rolled-back|detached". Run by bash (the probe said the node has one).
 */
export const INSTALL_SCRIPT = `
set -u
# The connection that runs this may go while it runs: a reverse node's tunnel is held by the very
# agent this restarts. With SIGPIPE (and SIGHUP) ignored, output to a closed connection is lost but
# the script goes on to its health gate and, if the new agent fails it, its rollback.
trap '' PIPE HUP
r="$1"; v="$2"; unit="$3"; rd="$4"; rs="$5"; gate="$6"; id="\${7-}"; a="$r/agent"; in="$a/.incoming-$v"; rin="$a/.incoming-runtime-$rd"
fail() { echo "$*" >&2; rm -rf "$in" "$rin" "$a/.unit.new"; exit 3; }
# Outcomes of detached upgrades nobody came back for (a day old).
[ -d "$r/run" ] && find "$r/run" -maxdepth 1 -name 'upgrade-*' -mtime +0 -exec rm -rf {} + 2>/dev/null
mkdir -p "$a" || fail "cannot create $a"
tar -x -p --no-same-owner -f - -C "$a" || fail "cannot unpack the upload into $a"
changed=""
if [ -n "$rd" ] && [ ! -x "$a/runtime/$rd/node" ]; then
  [ -f "$rin/node" ] || fail "runtime $rd is not on the node and was not uploaded"
  echo "$rs  $rin/node" | sha256sum -c --quiet - >&2 || fail "the upload of runtime $rd is damaged (sha256sum -c)"
  chmod 755 "$rin/node" && mkdir -p "$a/runtime" && rm -rf "$a/runtime/$rd" && mv "$rin" "$a/runtime/$rd" || fail "cannot move runtime $rd into place"
  changed="$changed runtime"
fi
[ -n "$rd" ] && rm -rf "$rin"
if [ ! -f "$a/$v/.complete" ]; then
  [ -d "$in" ] || fail "agent $v is not on the node and was not uploaded"
  (cd "$in" && sha256sum -c --quiet SHA256SUMS) >&2 || fail "the upload of agent $v is damaged (sha256sum -c)"
  # Every file and directory of the upload on disk before it is renamed into place (fsync each,
  # not sync(1): a whole-machine flush costs seconds on a busy node).
  : > "$in/.complete" && find "$in" -exec sync -- {} + || fail "cannot sync the upload of agent $v"
  rm -rf "$a/$v" && mv "$in" "$a/$v" || fail "cannot move agent $v into place"
  changed="$changed agent"
fi
rm -rf "$in"
prev=$(readlink "$a/current" 2>/dev/null || true)
if [ "$prev" != "$v" ]; then
  ln -sfn "$v" "$a/.current.tmp" && mv -T "$a/.current.tmp" "$a/current" || fail "cannot switch $a/current"
  if [ -n "$prev" ]; then ln -sfn "$prev" "$a/.previous.tmp" && mv -T "$a/.previous.tmp" "$a/previous"; fi
  changed="$changed current"
fi
keep_prev=$(readlink "$a/previous" 2>/dev/null || true)
for d in "$a"/*; do
  n=\${d##*/}
  case "$n" in *[!0-9a-f]*) continue;; esac
  [ \${#n} -eq 20 ] && [ "$n" != "$v" ] && [ "$n" != "$keep_prev" ] && rm -rf "$d"
done
old=$(umask); umask 077
mkdir -p "$r/secrets" && chmod 700 "$r/secrets" || fail "cannot create $r/secrets"
if [ ! -s "$r/secrets/agent-token" ]; then
  t=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \\n')
  [ \${#t} -eq 64 ] || fail "cannot read 32 random bytes from /dev/urandom"
  printf '%s' "$t" > "$r/secrets/.agent-token.tmp" && mv "$r/secrets/.agent-token.tmp" "$r/secrets/agent-token" || fail "cannot write $r/secrets/agent-token"
  changed="$changed credential"
fi
chmod 600 "$r/secrets/agent-token"; umask "$old"
printf 'credential %s\\n' "$(sha256sum < "$r/secrets/agent-token" | cut -d ' ' -f 1)"
if ! cmp -s "$a/.unit.new" "$unit"; then
  cp "$a/.unit.new" "$unit.tmp" && chmod 644 "$unit.tmp" && mv "$unit.tmp" "$unit" || fail "cannot write $unit"
  systemctl daemon-reload || fail "systemctl daemon-reload failed"
  changed="$changed unit"
fi
rm -f "$a/.unit.new"
systemctl is-enabled --quiet edgectl-agent.service || { systemctl enable --quiet edgectl-agent.service || fail "systemctl enable failed"; changed="$changed enabled"; }
# What a power cut right after this must still find on disk: the entries and files changed.
if [ -n "$changed" ]; then
  ud=\${unit%/*}
  set -- "$a" "$r/secrets" "$r/secrets/agent-token" "$unit" "$ud"
  [ -d "$ud/multi-user.target.wants" ] && set -- "$@" "$ud/multi-user.target.wants"
  [ -n "$rd" ] && set -- "$@" "$a/runtime" "$a/runtime/$rd" "$a/runtime/$rd/node"
  sync -- "$@" 2>/dev/null || sync
fi
for c in $changed; do echo "changed $c"; done
restart=""
case "$changed" in *agent*|*current*|*unit*) restart=yes;; esac
systemctl is-active --quiet edgectl-agent.service || restart=yes
[ -n "$restart" ] || { echo 'result unchanged'; exit 0; }
# A reverse node's tunnel is held by the agent the gate restarts: that exec would lose its connection
# and never see the outcome. The gate runs detached (a transient systemd unit) and writes its outcome
# under run/upgrade-<id>/; edgectl reconnects once the tunnel is back and reads it (RESULT_SCRIPT).
if [ -n "$id" ]; then
  case "$id" in *[!0-9a-f]*|'') fail "malformed upgrade id";; esac
  d="$r/run/upgrade-$id"
  mkdir -p "$d" || fail "cannot create $d"
  # Run by the unit: once this script has exited and its exit status had a second to cross the
  # tunnel, the gate with its output and exit code in files (code last, by rename).
  wrap='g=$1; d=$2; p=$3; shift 3
for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
sleep 1
bash -c "$g" edgectl-gate "$@" >"$d/out" 2>"$d/err"
echo $? >"$d/code.tmp"; sync -- "$d/out" "$d/err" "$d/code.tmp" 2>/dev/null; mv -f "$d/code.tmp" "$d/code"; sync -- "$d" 2>/dev/null'
  if systemd-run --quiet --collect --unit "edgectl-upgrade-$id" --description "edgectl: agent $v restart, health gate, rollback (upgrade $id)" \
      "$(command -v bash)" -c "$wrap" edgectl-detach "$gate" "$d" "$$" "$r" "$v" "$prev"; then
    echo 'result detached'; exit 0
  fi
  echo "systemd-run failed: running the health gate in this connection" >&2
  rm -rf "$d"
fi
bash -c "$gate" edgectl-gate "$r" "$v" "$prev"
`;

/**
 * $1 root, $2 the new agent version, $3 the one before it (empty: none). Restarts the agent, then
 * the gate (bash: /dev/tcp, SECONDS): within 15 s the service's main process must be the new
 * build and healthy: /healthz ok with its `version` when the node has a release, else
 * run/agent.state naming its pid and version (it waits for a first agent.json, nothing listens
 * yet); one that exits fails at once. Else current goes back to previous and the agent is
 * restarted (exit 5). Lines: "result installed|rolled-back". Run by the install script, in its
 * connection or (a reverse node) detached.
 */
export const GATE_SCRIPT = `
set -u
trap '' PIPE HUP
r="$1"; v="$2"; prev="$3"; a="$r/agent"
svc() { # ActiveState, NRestarts and MainPID of the service -> as, nr, mp
  as=; nr=; mp=; local k x
  while IFS='=' read -r k x; do case "$k" in ActiveState) as=$x;; NRestarts) nr=$x;; MainPID) mp=$x;; esac; done < <(systemctl show -p ActiveState -p NRestarts -p MainPID edgectl-agent.service 2>/dev/null)
}
send() { # fd, bytes: a peer that reset the connection is a failed try (SIGPIPE is ignored throughout)
  printf '%s' "$2" 2>/dev/null >&"$1"
}
listener() { # where the current release's agent answers /healthz -> ah, ap (empty: no release, or no TCP listener)
  ah=; ap=; local f="$r/current/agent/agent.json" j
  [ -f "$f" ] || return 1
  j=$(head -c 65536 "$f")
  # The top-level "listen" only (two-space indent, as render writes it): not a nested one.
  local re=$'\\n  ''"listen":[[:space:]]*"([0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[[0-9a-fA-F:]{2,39}\\]):([0-9]{1,5})"'
  if [[ "$j" =~ $re ]]; then
    ah=\${BASH_REMATCH[1]}; ap=\${BASH_REMATCH[2]}; ah=\${ah#[}; ah=\${ah%]}
    case "$ah" in 0.0.0.0) ah=127.0.0.1;; ::) ah=::1;; esac
  fi
  return 0
}
healthy() { # version, seconds: the service's main process is that agent build and healthy before then
  # (docs/bootstrap.md): with a release, /healthz answers ok with "version" $1; with none yet (the
  # agent waits for its first agent.json, nothing listens), run/agent.state names the service's
  # main pid and $1. A process that exits (the service not active, or restarted by systemd) fails at once.
  local end=$((SECONDS + $2)) nr0 b st
  svc; nr0=$nr
  while [ $SECONDS -lt $end ]; do
    sleep 0.2
    svc
    if [ "$as" != active ] || [ "$nr" != "$nr0" ]; then why="the agent exited (service $as, $((nr - nr0)) automatic restarts)"; return 1; fi
    if listener && [ -n "$ah" ]; then
      why="no /healthz ok with version $1 on $ah:$ap within $2 s"
      { exec 4<>"/dev/tcp/$ah/$ap"; } 2>/dev/null || continue
      b=; send 4 $'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' &&
        IFS= read -r -d '' -t 1 -N 4096 b <&4 2>/dev/null; exec 4<&-
      [[ "$b" == *'"ok":true'* && "$b" == *'"version":"'"$1"'"'* ]] && return 0
    else
      why="run/agent.state did not name pid $mp and version $1 within $2 s"
      st=; IFS= read -r st <"$r/run/agent.state" 2>/dev/null
      [[ "$st" == "$mp $1 "* ]] && return 0
    fi
  done
  return 1
}
why=
if systemctl restart edgectl-agent.service && healthy "$v" 15; then echo 'result installed'; exit 0; fi
echo "agent $v: $why" >&2
journalctl -u edgectl-agent.service -n 20 --no-pager -o cat >&2 2>/dev/null
if [ -n "$prev" ] && [ "$prev" != "$v" ] && [ -f "$a/$prev/.complete" ]; then
  ln -sfn "$prev" "$a/.current.tmp" && mv -T "$a/.current.tmp" "$a/current"
  sync -- "$a"
  systemctl restart edgectl-agent.service && healthy "$prev" 15 || echo "the previous agent $prev did not come back healthy either: $why" >&2
  echo 'result rolled-back'; exit 5
fi
echo 'the agent does not come up healthy' >&2; exit 4
`;

/**
 * $1 root, $2 upgrade id: the outcome of a detached gate. stdout: "state none|running|done", and
 * when done "code N" and the gate's own stdout; stderr: the gate's stderr.
 */
export const RESULT_SCRIPT = `
d="$1/run/upgrade-$2"
[ -d "$d" ] || { echo 'state none'; exit 0; }
[ -f "$d/code" ] || { echo 'state running'; exit 0; }
cat "$d/out" 2>/dev/null
cat "$d/err" >&2 2>/dev/null
printf 'state done\ncode %s\n' "$(cat "$d/code")"
exit 0
`;

/** $1 root, $2 upgrade id: removes that outcome once read. */
export const RESULT_DONE_SCRIPT = `rm -rf -- "$1/run/upgrade-$2"`;

/** "key value" lines → a map (the last of a key wins; "changed", "have" and "rt" lines are collected). */
export function parseLines(stdout: string): { kv: Map<string, string>; changed: string[]; have: string[]; rt: string[] } {
  const kv = new Map<string, string>();
  const changed: string[] = [];
  const have: string[] = [];
  const rt: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([a-z]+) ?(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === 'changed') changed.push(m[2]);
    else if (m[1] === 'have') have.push(m[2]);
    else if (m[1] === 'rt') rt.push(m[2]);
    else kv.set(m[1], m[2]);
  }
  return { kv, changed, have, rt };
}
