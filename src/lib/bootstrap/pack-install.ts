import { EdgectlError } from '../errors.js';
import { RE } from '../fleet/values.js';
import { prebuildDirFor } from './package.js';
import { MIN_NODE_MAJOR } from './runtime.js';
import { BACKOFF_SYSTEMD, UNIT_PATH } from './unit.js';

/** What the packed unit names as its runtime until install.sh finds the node's own Node.js. */
export const PACK_RUNTIME_PLACEHOLDER = '/edgectl-pack-runtime/node';

export interface PackInstallValues {
  node: string;
  root: string;
  version: string;
  arch: string;
  runtime?: { digest: string; sha256: string };
}

const SAFE = /^\/[A-Za-z0-9._/+-]*$/;

/**
 * The packed installer's install.sh, run as root on the node from the unpacked archive, with no
 * network: the same layout bootstrap makes (docs/bootstrap.md), plus the tunnel key, the
 * credential and <root>/agent/first.json, and <root>/secrets/packed so that the first bootstrap
 * makes key and credential anew. A node that has a tunnel key already (installed before, by a
 * pack or by bootstrap) is refused unless it is this pack's own key (running install.sh again).
 * Every value was checked before it went into the script.
 */
export function packInstallScript(v: PackInstallValues): string {
  const ok = RE.dnsLabel.test(v.node) && SAFE.test(v.root) && !v.root.split('/').includes('..') && /^[0-9a-f]{20}$/.test(v.version) && !!prebuildDirFor(v.arch)
    && (!v.runtime || (/^[0-9a-f]{20}$/.test(v.runtime.digest) && RE.sha256.test(v.runtime.sha256)));
  if (!ok) throw new EdgectlError('EDGECTL_BOOTSTRAP', `the pack's values cannot go into install.sh (node ${JSON.stringify(v.node)}, root ${JSON.stringify(v.root)})`);
  const arches = v.arch === 'x86_64' || v.arch === 'amd64' ? 'x86_64|amd64' : v.arch === 'aarch64' || v.arch === 'arm64' ? 'aarch64|arm64' : v.arch;
  return `#!/bin/sh
# edgectl packed installer for node ${v.node}: run as root on the node (no network needed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
r=${v.root}
a="$r/agent"
v=${v.version}
unit=${UNIT_PATH}
fail() { echo "install.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run it as root"
case "$(uname -m)" in ${arches}) ;; *) fail "this pack is for ${v.arch}, the machine is $(uname -m)";; esac
command -v systemctl > /dev/null && [ -d /run/systemd/system ] || fail "the machine does not run systemd (docs/bootstrap.md, Nodes without systemd)"
if [ -s "$r/secrets/tunnel-key" ] && ! cmp -s "$here/secrets/tunnel-key" "$r/secrets/tunnel-key"; then
  fail "$r/secrets/tunnel-key exists: the node was installed before; bootstrap it through its tunnel instead"
fi
umask 022
mkdir -p "$a" || fail "cannot create $a"
${v.runtime ? `rd="$a/runtime/${v.runtime.digest}"
if [ ! -x "$rd/node" ]; then
  [ "$(sha256sum < "$here/runtime/node" | cut -d ' ' -f 1)" = ${v.runtime.sha256} ] || fail "the packed runtime is damaged (sha256)"
  mkdir -p "$a/runtime" && rm -rf "$rd.tmp" && mkdir "$rd.tmp" && cp "$here/runtime/node" "$rd.tmp/node" && chmod 755 "$rd.tmp/node" && mv "$rd.tmp" "$rd" || fail "cannot install the runtime"
fi
rt="$rd/node"` : `rt=""
for c in "$(command -v node 2>/dev/null)" /usr/local/bin/node /usr/bin/node; do [ -n "$c" ] && [ -x "$c" ] && { rt=$c; break; }; done
[ -n "$rt" ] || fail "no Node.js on the machine (node on PATH, /usr/local/bin or /usr/bin): pack again with --runtime"
case "$rt" in *[!A-Za-z0-9._/+-]*) fail "the Node.js path $rt cannot go into the unit";; esac`}
"$rt" -e 'process.exit(+process.versions.node.split(".")[0] >= ${MIN_NODE_MAJOR} ? 0 : 1)' || fail "$rt is not Node.js >= ${MIN_NODE_MAJOR}"
if [ ! -f "$a/$v/.complete" ]; then
  (cd "$here/agent/$v" && sha256sum -c --quiet SHA256SUMS) >&2 || fail "the packed agent is damaged (sha256sum -c)"
  rm -rf "$a/.incoming-$v" && cp -R "$here/agent/$v" "$a/.incoming-$v" && : > "$a/.incoming-$v/.complete" || fail "cannot copy the agent"
  rm -rf "$a/$v" && mv "$a/.incoming-$v" "$a/$v" || fail "cannot move the agent into place"
fi
ln -sfn "$v" "$a/.current.tmp" && mv -T "$a/.current.tmp" "$a/current" || fail "cannot switch $a/current"
cp "$here/first.json" "$a/.first.json.tmp" && mv "$a/.first.json.tmp" "$a/first.json" || fail "cannot write $a/first.json"
umask 077
mkdir -p "$r/secrets" && chmod 700 "$r/secrets" || fail "cannot create $r/secrets"
for f in tunnel-key agent-token; do
  cp "$here/secrets/$f" "$r/secrets/.$f.tmp" && chmod 600 "$r/secrets/.$f.tmp" && mv "$r/secrets/.$f.tmp" "$r/secrets/$f" || fail "cannot write $r/secrets/$f"
done
: > "$r/secrets/packed"
umask 022
uf="$here/edgectl-agent.service"; sv=$(systemctl --version 2>/dev/null | head -n 1); sv=\${sv#systemd }; sv=\${sv%% *}
case "$sv" in ''|*[!0-9]*) ;; *) [ "$sv" -ge ${BACKOFF_SYSTEMD} ] && uf="$uf.backoff";; esac
sed "s|${PACK_RUNTIME_PLACEHOLDER}|$rt|g" "$uf" > "$unit.tmp" && chmod 644 "$unit.tmp" && mv "$unit.tmp" "$unit" || fail "cannot write $unit"
sync
systemctl daemon-reload && systemctl enable --quiet edgectl-agent.service && systemctl restart edgectl-agent.service || fail "cannot start edgectl-agent.service"
sleep 3
[ "$(systemctl show -p ActiveState --value edgectl-agent.service)" = active ] || { journalctl -u edgectl-agent.service -n 20 --no-pager -o cat >&2; fail "the agent does not stay up"; }
echo "installed: edgectl-agent.service is active; it opens the tunnel to the relay by itself. Delete this archive now."
`;
}
