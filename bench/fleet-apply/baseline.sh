#!/bin/bash
# The floor edgectl's apply is measured against: per node ONE OpenSSH connection and ONE exec,
# the node's rendered bundle as a tar on stdin; the node stages it, syncs it, checks the whole
# tree with `nginx -t`, switches `current` atomically (symlink renamed over) and reloads nginx
# (or starts it). No lock, no state read, no health check, no revert: the least an apply can do.
# The no-op is one connection and one exec too: is `current` already the release?
#
#   baseline.sh apply|noop NODES_FILE CONCURRENCY
#   NODES_FILE: one node a line: name address port root bundle-dir release-id [hop]
#   env: SSH_KEY, KNOWN_HOSTS; through a relay also RELAY_HOST, RELAY_PORT: one master
#        connection to the relay (ControlMaster, its socket under BASELINE_TMP), every node
#        reached through it (ssh -W over the master: one nested connection per node, as
#        edgectl's forwardOut); a node whose hop is "master" (the relay itself) runs its exec
#        on the master connection.
#
# Prints "ok NAME" / "unchanged NAME" / "FAIL NAME" per node and a summary; exits 1 if a node failed.
set -uo pipefail

# curve25519, as edgectl (ssh2) negotiates: OpenSSH 9.x's default sntrup761x25519 costs ~80 ms of
# client CPU per connection here (and the node's sshd pays too), which is not the floor.
base=(-F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$KNOWN_HOSTS"
  -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o KexAlgorithms=curve25519-sha256)
ssh_opts() {
  opts=("${base[@]}" -o ControlMaster=no -o ControlPath=none)
  if [ -n "${BASELINE_CTL:-}" ]; then
    opts+=(-o "ProxyCommand=ssh -F /dev/null -o ControlPath=$BASELINE_CTL -W %h:%p relay")
  fi
}

# shellcheck disable=SC2016 # expanded on the node
APPLY='set -e; r=$1 id=$2
mkdir -p "$r" && cd "$r" && mkdir -p releases log run cache tmp
s=releases/.tmp-$id; rm -rf "$s"; mkdir "$s"
tar -x -f - -C "$s"
find "$s" -exec sync -- {} +
rm -rf "releases/$id"; mv -T "$s" "releases/$id"; sync -- releases
nginx -t -q -p "$r/" -c "$r/releases/$id/nginx/nginx.conf"
ln -sfn "releases/$id" .current.tmp && mv -T .current.tmp current && sync -- .
if [ -s run/nginx.pid ] && kill -0 "$(cat run/nginx.pid)" 2>/dev/null; then
  nginx -p "$r/" -c "$r/current/nginx/nginx.conf" -s reload
else
  nginx -p "$r/" -c "$r/current/nginx/nginx.conf"
fi'
# shellcheck disable=SC2016
NOOP='[ "$(readlink "$1/current")" = "releases/$2" ] || exit 3'

if [ "${1:-}" = one ]; then
  mode=$2 name=$3 addr=$4 port=$5 root=$6 bundle=$7 id=$8 hop=${9:-}
  ssh_opts
  if [ "$hop" = master ]; then opts=("${base[@]}" -o ControlPath="$BASELINE_CTL"); addr=relay; fi
  if [ "$mode" = apply ]; then
    tar -C "$bundle" -cf - . | ssh "${opts[@]}" -p "$port" "root@$addr" "bash -c $(printf %q "$APPLY") baseline $(printf %q "$root") $id"
  else
    ssh "${opts[@]}" -p "$port" "root@$addr" "bash -c $(printf %q "$NOOP") baseline $(printf %q "$root") $id" </dev/null
  fi
  rc=$?
  if [ $rc = 0 ]; then echo "$([ "$mode" = apply ] && echo ok || echo unchanged) $name"; else echo "FAIL $name (exit $rc)"; fi
  exit 0
fi

mode=${1:?apply|noop} list=${2:?nodes file} conc=${3:?concurrency}
case "$mode" in apply|noop) ;; *) echo "baseline.sh: mode is apply or noop, not $mode" >&2; exit 2;; esac
if [ -n "${RELAY_HOST:-}" ]; then
  BASELINE_CTL=$(mktemp -u "${BASELINE_TMP:-/tmp}/ebl-XXXXXX")
  export BASELINE_CTL
  ssh "${base[@]}" -o ControlMaster=yes -o ControlPath="$BASELINE_CTL" -o ControlPersist=yes -f -N -p "$RELAY_PORT" "root@$RELAY_HOST" || { echo "baseline.sh: cannot connect to the relay" >&2; exit 1; }
  trap 'ssh -o ControlPath="$BASELINE_CTL" -O exit relay 2>/dev/null' EXIT
fi
out=$(xargs -P "$conc" -L 1 "$0" one "$mode" <"$list")
echo "$out"
fails=$(grep -c '^FAIL' <<<"$out")
echo "baseline $mode: $(wc -l <"$list") nodes, $fails failed"
[ "$fails" = 0 ]
