import { LIVE_NGINX_FN, NGINX_WORKERS_FN, lingeringNote } from './remote.js';

/**
 * A whole activation in one round trip (bash, for its /dev/tcp probe: no curl needed, no fork
 * per check). The steps and guarantees are apply's own, in the same order: lock, stale check,
 * stage from a tar on stdin (or verify a release already there), sha256 of every file, fsync,
 * rename into place, `nginx -t` of the whole tree, intent recorded, `current` renamed over,
 * reload or start, the new config id seen served, health, `good`, prune, unlock; any failure
 * after the switch switches back and reloads. Each step prints "step <name>" as it starts, so
 * the operator times the steps as the lines arrive; the last line is "outcome <outcome>".
 * Only the failing step's own output goes to stderr. Every value is a positional parameter.
 *
 * Args: 1 root  2 name  3 nonce  4 holder JSON  5 lock id needle  6 expected current ("-": no
 * check, "": none)  7 mode (stage|exists)  8 source release for copies ("" none)  9 nginx
 * binary  10 revert target ("" none)  11 its config id ("" unknown)  12 the new config id
 * 13 probe host  14 probe port  15 op (activate|rollback)  16 at (ISO time)  17 by  18 record
 * info JSON  19 keep (names, space-separated)  20 the number of health targets.
 * Stdin: the script itself (ONESHOT_BOOT reads it: dropbear refuses a command over 9000 bytes),
 * the health targets one per line (host, path, status, body; tab-separated), then in stage mode
 * a tar unpacked at the root (oneshot.ts streamOf): releases/.tmp-<name>-<nonce> with the files to
 * send (each with its mode: 644, 755, 600 for a secret), releases/.tmp-ctl-<name>-<nonce>/{copy,
 * move,sums,sync,end} (sync: every file and directory of the release, for one sync call) and the
 * links .current.tmp-<nonce> and .good.tmp-<nonce>; in exists mode the sha256sum checklist.
 * Programs are forked only where a shell has no builtin (rename, fsync, mkdir, unlink, tar,
 * sha256, nginx): a first activation runs 15, one rm for the leftovers at the end (junk).
 */
/**
 * The command line: reads the script's exact length from stdin (bash's read takes a pipe a byte
 * at a time, so the rest of stdin is left for the script) and runs it with the arguments.
 */
export const ONESHOT_BOOT = 'LC_ALL=C; IFS= read -r -d "" -N "$1" s || exit 97; shift; eval "$s"';

export const ONESHOT_SCRIPT = `
set -u
umask 022
r=$1 name=$2 nonce=$3 holder=$4 needle=$5 expect=$6 mode=$7 src=$8 ng=$9
prev=\${10} prevcfg=\${11} cfg=\${12} ph=\${13} pp=\${14} op=\${15} at=\${16} by=\${17} info=\${18} keep=\${19} nh=\${20}
targets=()
for ((i = 0; i < nh; i++)); do IFS= read -r l; targets+=("$l"); done
${LIVE_NGINX_FN}${NGINX_WORKERS_FN}
step() { echo "step $1"; cur_step=$1; }
note() { printf 'note %s\\n' "$1"; }
locked=0
oldw= # the old workers of a reload (reload, quit_old)
junk=() # removed in one rm as the script ends, before the lock (nothing is deleted under the next holder)
unlock() {
  set -- \${junk[@]+"\${junk[@]}"}; junk=()
  if [ $locked = 1 ]; then
    h=; IFS= read -r h <.edgectl/lock/holder 2>/dev/null
    case "$h" in *"$needle"*) set -- "$@" .edgectl/lock;; esac
    locked=0
  fi
  [ $# = 0 ] || rm -rf -- "$@"
}
finish() { unlock; echo "outcome $1"; exit 0; }
fail() { printf 'fail %s %s\\n' "$cur_step" "$1"; }
record() { # a builtin write, no fork (.edgectl/rel exists from the start; a torn record reads as unknown)
  printf '%s\\t%s\\t%s\\t%s\\n' "$1" "$2" "$at" "$info" >".edgectl/rel/$name"
}
intent() { # op from to [more to sync with it]
  printf '{"op":"%s","from":%s,"to":"%s","by":%s,"at":"%s"}\\n' "$1" "$2" "$3" "$by" "$at" >.edgectl/intent.json.tmp
  mv -f -T .edgectl/intent.json.tmp .edgectl/intent.json && sync -- .edgectl/intent.json .edgectl "\${@:4}"
}
point() { # link release: the stream's link when it brought one to this release, else a new one
  if [ "$2" = "$name" ] && [ -L ".$1.tmp-$nonce" ]; then mv -T ".$1.tmp-$nonce" "$1"; return; fi
  { [ ! -L ".$1.tmp" ] || rm -f ".$1.tmp"; } && ln -s "releases/$2" ".$1.tmp" && mv -T ".$1.tmp" "$1"
}
sync_release() { # dir, list: the dir and every path the list names under it (the stream lists the
  # release's files and directories), 1,000 to a sync: no find, and under the kernel's limit on arguments
  local P Q i; mapfile -t P <"$2"; P=(. "\${P[@]}")
  for ((i = 0; i < \${#P[@]}; i += 1000)); do Q=("\${P[@]:i:1000}"); sync -- "\${Q[@]/#/$1/}" || return 1; done
}
send() { # fd, bytes: a peer that reset the connection (a server closing as it reloads) is a
  # failed try, not a SIGPIPE that ends the whole activation without an outcome
  local rc; trap '' PIPE; printf '%s' "$2" 2>/dev/null >&"$1"; rc=$?; trap - PIPE; return $rc
}
probe() { # host-header path [body] -> ps (status), and with "body" pb (its first 2000 bytes).
  # bash reads a socket a byte at a time: a status alone is its first line, not the whole answer.
  ps=; pb=; local l
  { exec 3<>"/dev/tcp/$ph/$pp"; } 2>/dev/null || return 1
  printf -v l 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nUser-Agent: edgectl\\r\\nConnection: close\\r\\n\\r\\n' "$2" "$1"
  send 3 "$l" || { exec 3<&-; return 1; }
  IFS=' ' read -r -t 5 l ps l <&3 2>/dev/null || { exec 3<&-; return 1; }
  if [ "\${3-}" = body ]; then
    while IFS= read -r -t 5 l <&3 2>/dev/null; do [ -z "\${l%$'\\r'}" ] && break; done
    IFS= read -r -d '' -t 5 -N 2000 pb <&3 2>/dev/null
  fi
  exec 3<&-
  return 0
}
serving() { # config id, tries (22: about 8 s)
  local i=0 d=0.05
  while :; do
    probe edgectl.invalid /.edgectl/config body && [ "$ps" = 200 ] && [ "\${pb%%[$'\\r\\n']*}" = "$1" ] && return 0
    i=$((i+1)); [ $i -ge "$2" ] && break
    sleep $d; case $d in 0.05) d=0.1;; 0.1) d=0.2;; *) d=0.4;; esac
  done
  seen="\${pb%%[$'\\r\\n']*}"; return 1
}
reload() { # sets act (reloaded|started), errlog (the error log's size before) and oldw (the
  # workers before a reload: see quit_old); nginx's words in tmp/.edgectl-ng.err
  errlog=0; [ -s log/error.log ] && errlog=$(stat -c %s log/error.log)
  oldw=
  if live_nginx run/nginx.pid >/dev/null; then
    nginx_workers "$_lnp"; oldw=$nw
    act=reloaded; "$ng" -p "$r/" -c "$r/current/nginx/nginx.conf" -s reload </dev/null >/dev/null 2>tmp/.edgectl-ng.err
  else
    # the local demo's stand-in, stale when no nginx runs (see nginx.ts)
    { [ -e run/demo-upstream.sock ] || [ -L run/demo-upstream.sock ]; } && rm -f run/demo-upstream.sock
    act=started; "$ng" -p "$r/" -c "$r/current/nginx/nginx.conf" </dev/null >/dev/null 2>tmp/.edgectl-ng.err
  fi
}
quit_old() { # once a new worker serves the config: no new client meets an old worker (up to 5 s)
  [ -n "$oldw" ] || return 0
  # shellcheck disable=SC2086 # a list of pids
  workers_quit 100 $oldw || note "${lingeringNote('$_wqp')}"
  oldw=
}
agent_pid() { # the node's agent (bootstrap's service): its pid when one runs from this root
  local p=; IFS= read -r p 2>/dev/null <run/agent.pid || return 1
  [[ "$p" =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null || return 1
  [[ "$(tr '\\0' ' ' </proc/$p/cmdline 2>/dev/null)" == *edgectl* ]] || return 1
  echo "$p"
}
agent_conf() { # release -> sets ad (sha256 of its agent.json), ah/ap (where its agent answers /healthz)
  ad=; ah=; ap=; local f="releases/$1/agent/agent.json" j=
  [ -f "$f" ] || return 1
  ad=$(sha256sum <"$f"); ad=\${ad%% *}
  j=$(head -c 65536 "$f")
  # /healthz is on the agent's device listener (the admin API wants its token): the top-level
  # "listen" of the file render writes (two-space indent; a nested one is not it); a wildcard
  # listener is asked on loopback. No such line: no address, and the gate cannot pass.
  local re=$'\\n  ''"listen":[[:space:]]*"([0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[[0-9a-fA-F:]{2,39}\\]):([0-9]{1,5})"'
  if [[ "$j" =~ $re ]]; then
    ah=\${BASH_REMATCH[1]}; ap=\${BASH_REMATCH[2]}; ah=\${ah#[}; ah=\${ah%]}
    case "$ah" in 0.0.0.0) ah=127.0.0.1;; ::) ah=::1;; esac
  fi
  return 0
}
agent_runs() { # digest, seconds: the agent answers /healthz ok with that agent.json before then
  local end=$((SECONDS + $2)) b
  while [ $SECONDS -lt $end ]; do
    if [ -n "$ah" ] && { exec 4<>"/dev/tcp/$ah/$ap"; } 2>/dev/null; then
      b=; send 4 $'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' &&
        IFS= read -r -d '' -t 1 -N 4096 b <&4 2>/dev/null; exec 4<&-
      [[ "$b" == *'"ok":true'* && "$b" == *'"config":"'"$1"'"'* ]] && return 0
    fi
    sleep 0.25
  done
  return 1
}
agent_hup=0
agent_back() { # after a revert: the agent back on the previous release's agent.json
  [ $agent_hup = 1 ] || return 0
  local p; p=$(agent_pid) || return 0
  kill -HUP "$p" 2>/dev/null; agent_conf "$prev" || return 0
  agent_runs "$ad" 10 || note "the agent did not come back on $prev's agent.json"
}
errlog_since() { tail -c +$((errlog + 1)) log/error.log 2>/dev/null | tail -c 4096 >&2; }
stop_nginx() {
  local pid i=0
  if pid=$(live_nginx run/nginx.pid); then
    kill -QUIT "$pid"; while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  fi
}
revert() {
  step rollback
  if [ -z "$prev" ] && [ -n "$cur" ]; then note "no earlier release on the node to roll back to"; finish failed; fi
  if [ -z "$prev" ]; then
    stop_nginx; rm -f current .edgectl/intent.json; sync -- . .edgectl
    note "first release failed: node left without a release, nginx stopped"; finish rolled-back
  fi
  intent rollback "\\"$name\\"" "$prev" && point current "$prev" && sync -- . || { note "rollback to $prev failed: cannot switch current"; finish failed; }
  if [ -n "$prevcfg" ] && [ "$prevcfg" = "$cfg" ] && live_nginx run/nginx.pid >/dev/null; then :
  elif ! reload; then note "rollback to $prev failed: nginx reload/start failed"; finish failed
  else echo "reloads $act"; fi
  agent_back
  if [ -n "$prevcfg" ] && ! serving "$prevcfg" 22; then note "rollback to $prev failed: previous release $prev is back in place but nginx does not serve it"; finish failed; fi
  [ -n "$prevcfg" ] && quit_old
  rm -f .edgectl/intent.json; sync -- .edgectl
  note "rolled back to $prev"; finish rolled-back
}

cur_step=lock
m=(); for d in .edgectl/rel releases log run cache tmp; do [ -d "$r/$d" ] || m+=("$r/$d"); done
{ [ \${#m[@]} = 0 ] || mkdir -p "\${m[@]}"; } && cd "$r" || { fail "cannot enter the node root $r"; finish failed; }
step lock
if ! mkdir .edgectl/lock 2>/dev/null; then
  h=; IFS= read -r h <.edgectl/lock/holder 2>/dev/null; printf 'holder %s\\n' "$h"; finish locked
fi
locked=1
# One write (a builtin): a reader that sees it half-written takes it for a live holder (lock.ts
# isExpired: not JSON, not expired), as it does an empty one.
printf '%s\\n' "$holder" >.edgectl/lock/holder
# Links an earlier run's stream brought and never used (it failed, or the node lost power).
for d in .current.tmp-* .good.tmp-*; do [ -L "$d" ] && junk+=("$d"); done
step read
cur=; [ -L current ] && cur=$(readlink current 2>/dev/null); cur=\${cur%/}; cur=\${cur##*/}
echo "from $cur"
# A node already at the target (a saved plan applied twice) is not stale: it is unchanged below.
if [ "$expect" != "-" ] && [ "$cur" != "$expect" ] && [ "$cur" != "$name" ]; then fail "current release is \${cur:-none}, the plan was made against \${expect:-none}"; finish stale; fi
dir="releases/$name" staged=0
if [ "$mode" = stage ]; then
  step upload
  for d in releases/.tmp-*; do [ -e "$d" ] && rm -rf "$d"; done
  if [ -d "$dir" ] && [ ! -f "$dir/manifest.json" ] && [ "$cur" != "$name" ]; then rm -rf "$dir"; fi
  s="releases/.tmp-$name-$nonce"; c="releases/.tmp-ctl-$name-$nonce"
  junk+=(".current.tmp-$nonce" ".good.tmp-$nonce")
  # tar makes $s (0700, the stream's first entry) and, once the archive ends, gives it 755 (its
  # last); -m: every file and directory made now has the node's own time (a release's
  # activation time is its directory's mtime).
  out=$(tar -x -p -m --no-same-owner -f - -C "$r" 2>&1) || { printf '%s\\n' "$out" >&2; fail "unpacking the release failed"; finish failed; }
  # The stream's last entry: without it the stream was cut (tar takes a cut at an entry's boundary as the end).
  { [ -d "$s" ] && [ ! -L "$s" ] && [ -f "$c/end" ]; } || { junk+=("$s" "$c"); fail "the stream ended before its last entry"; finish failed; }
  if [ -n "$src" ] && [ -s "$c/copy" ] && cd "releases/$src"; then
    xargs -r -d '\\n' cp --parents -p -t "$r/$s" -- <"$r/$c/copy" 2>/dev/null; cd "$r"
  fi
  if [ -n "$src" ] && [ -s "$c/move" ]; then
    while IFS= read -r a && IFS= read -r b; do
      case "$b" in */*) mkdir -p "$s/\${b%/*}";; esac; cp -p -- "releases/$src/$a" "$s/$b" 2>/dev/null
    done <"$c/move"
  fi
  # Every mode comes from the stream (tar -p: 644, 755, 600 for a secret, exactly, whatever the
  # umask) or from the release it was copied from (cp -p); the directories tar makes are 755 under
  # the umask set above. tar and cp create each file with its own mode or less (never more), and
  # $s is 0700 until tar has written every byte: a secret is never readable by others on the way.
  cd "$s" || { fail "cannot enter $s"; finish failed; }
  if ! sha256sum --strict --quiet -c "$r/$c/sums" >"$r/$c/bad" 2>/dev/null; then
    cd "$r"; while IFS= read -r l; do printf 'bad %s\\n' "$l"; done <"$c/bad"
    rm -rf "$s" "$c"; fail "files copied on the node did not match"; finish retry
  fi
  cd "$r"
  if [ -f "$dir/manifest.json" ]; then
    # Already on the node (another apply put it there since the plan read the node): used if intact.
    if ! (cd "$dir" && sha256sum --strict --quiet -c "$r/$c/sums" >/dev/null 2>&1); then
      rm -rf "$s" "$c"; fail "release $name on the node does not match its manifest"; finish dirty
    fi
    rm -rf "$s" "$c"
  else
    # Not durable (an I/O error, a full disk): never renamed into place.
    sync_release "$s" "$c/sync" || { rm -rf "$s" "$c"; fail "syncing the staged release failed"; finish failed; }
    junk+=("$c")
    # Made durable with the intent below, before current can point at it (one sync fewer).
    mv -T "$s" "$dir" || { rm -rf "$s"; fail "cannot rename the staged release into place"; finish failed; }
    staged=1
    record staged ""
  fi
else
  step verify
  if ! bad=$(cd "$dir" 2>/dev/null && sha256sum --strict -c - 2>/dev/null); then
    printf '%s\\n' "$bad" | while IFS= read -r l; do case "$l" in *': OK') ;; *) printf 'bad %s\\n' "$l";; esac; done
    fail "release $name on the node does not match its manifest"; finish dirty
  fi
fi
if [ "$cur" = "$name" ] && [ ! -e .edgectl/intent.json ] && live_nginx run/nginx.pid >/dev/null && serving "$cfg" 5; then
  finish unchanged
fi
step validate
if ! "$ng" -t -q -p "$r/" -c "$r/$dir/nginx/nginx.conf" >tmp/.edgectl-t.err 2>&1; then
  cat tmp/.edgectl-t.err >&2; record failed validate; fail "nginx -t rejected the release"; finish failed
fi
step switch
fromj=null; [ -n "$cur" ] && fromj="\\"$cur\\""
# A release staged by this run has the activation time as its mtime already (its last entry was
# made just now): touched only when it was on the node before (the activation time is the mtime).
intent "$op" "$fromj" "$name" releases && point current "$name" && { [ $staged = 1 ] || touch -c "$dir"; } && sync -- . || { fail "switching current failed"; finish failed; }
step reload
# nginx reads every file through current/: the same nginx config (an agent.json, a page or a
# FastCGI script changed) is served without a reload once current points at the new release.
if [ -n "$prevcfg" ] && [ "$prevcfg" = "$cfg" ] && live_nginx run/nginx.pid >/dev/null && serving "$cfg" 1; then :
else
  if ! reload; then cat tmp/.edgectl-ng.err >&2; record failed reload; fail "nginx reload/start failed"; revert; fi
  echo "reloads $act"
fi
step config
if ! serving "$cfg" 22; then
  errlog_since
  record failed config; fail "nginx $act but does not serve the new config (serving \${seen:-nothing}, expected $cfg)"; revert
fi
quit_old
# The agent (when bootstrap's service runs one here) takes a changed agent.json on SIGHUP: its
# FastCGI apps whose payload changed restart, the rest of it is re-created in-process. Part of the
# gate: an agent that does not answer /healthz with the new config's digest reverts the release.
if apid=$(agent_pid) && agent_conf "$name"; then
  new_ad=$ad; old_ad=
  [ -n "$cur" ] && [ "$cur" != "$name" ] && agent_conf "$cur" && old_ad=$ad
  if [ "$new_ad" != "$old_ad" ]; then
    step agent
    agent_conf "$name"
    agent_hup=1; kill -HUP "$apid" 2>/dev/null
    if ! agent_runs "$new_ad" 15; then record failed agent; fail "the agent did not come up with the new agent.json (no /healthz ok with its digest within 15 s)"; revert; fi
    echo "agent $new_ad"
  fi
fi
step health
bad=0
for t in "\${targets[@]}"; do
  IFS=$'\\t' read -r hh hp hs hb <<<"$t"
  [ "$hb" = - ] && hb=
  why=
  for i in 0 1 2 3; do
    [ $i -gt 0 ] && sleep "0.$((25 * i))"
    if ! probe "$hh" "$hp" \${hb:+body}; then why="GET $hp (Host: $hh): no answer from nginx"; continue; fi
    case "$hs" in page-*)
      # The app's own page (health.ts judgePage): nginx's own answers fail, an upstream down is a note.
      case "$ps" in
        502|503|504) why=; printf 'note %s: GET %s (Host: %s) answered %s: its upstream is down\\n' "$hh" "$hp" "$hh" "$ps"; break;;
        5??) why="GET $hp (Host: $hh) answered $ps, an answer of nginx's own"; continue;;
        403|404) [ "$hs" = page-static ] && { why="GET $hp (Host: $hh) answered $ps, an answer of nginx's own"; continue; };;
      esac
      why=; break;;
    esac
    if [ "$ps" != "$hs" ]; then why="GET $hp (Host: $hh) answered $ps, expected $hs"; continue; fi
    if [ -n "$hb" ] && [[ "$pb" != *"$hb"* ]]; then why="GET $hp (Host: $hh) was not answered by the app's server block"; continue; fi
    why=; break
  done
  [ -n "$why" ] && { printf '%s: %s\\n' "$hh" "$why" >&2; printf 'unhealthy %s\\n' "$hh"; bad=1; }
done
if [ $bad = 1 ]; then record failed health; fail "health check failed"; revert; fi
step good
point good "$name" || { fail "marking the release good failed"; finish failed; }
record good ""
for d in releases/*/; do
  d=\${d%/}; d=\${d#releases/}; k=0
  for x in $keep; do [ "$d" = "$x" ] && k=1; done
  [ $k = 1 ] || junk+=("releases/$d" ".edgectl/rel/$d")
done
# The intent goes in the one rm with the leftovers and the lock, and one sync then makes good and
# its removal durable. A power cut before that sync leaves at worst the intent with current and
# good the same release, or good back where it was: reset-to-work reloads, or switches current
# back to good (reset/index.ts), as it does for any switch cut short.
junk+=(.edgectl/intent.json)
unlock
sync -- . .edgectl || { fail "marking the release good failed"; echo "outcome failed"; exit 0; }
step done
echo "outcome applied"
`;
