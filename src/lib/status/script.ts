import { LIVE_NGINX_FN } from '../release/remote.js';

/** Each of the agent's answers is cut on the node at this many bytes (headers included). */
export const MAX_HTTP_ANSWER = 256 * 1024;
/** A whole answer longer than this is refused: no honest node says that much. */
/** Certificates the script reports (the leaf's base64, at most MAX_CERT_B64 characters each). */
export const MAX_CERTS = 200;
export const MAX_CERT_B64 = 3800; // with "cert", the app and two tabs, under parse.ts MAX_LINE
export const MAX_STATUS_OUTPUT = 3 * MAX_HTTP_ANSWER + 64 * 1024 + MAX_CERTS * (MAX_CERT_B64 + 140);

/**
 * What `edgectl status` asks a node, in one exec: POSIX sh (dash, busybox; bash may be missing).
 * Args: $1 root, $2 $3 $4 the agent's admin address (loopback), the same as a URL host ([::1])
 * and its port, $5 its admin token file, $6 a nonce delimiting the HTTP answers, $7 $8 $9 where
 * the node's nginx listens (as seen from the node), as a URL host, and its port.
 * One `key<TAB>value` line per fact:
 *   current/good  the links' targets;  rec NAME LINE  the release record of each;
 *   want  the nginx config id of current's manifest;  cert APP B64  the leaf of each TLS app's chain;  nginx PID and workers N  when the pid file
 *   names a live nginx;  agentv  the installed agent (agent/current, as bootstrap links it);
 *   token ok|missing|bad;  disk  df's line;  load;
 *   http NAME  then a raw HTTP answer (curl, else bash's /dev/tcp) up to --NONCE-end--: nginx's
 *   GET /.edgectl/config (the config it serves), the agent's /healthz and /status;
 *   agent unknown  when the node has neither curl nor bash.
 * The admin token is read here and handed to curl on its stdin (-K -) or to bash on its stdin:
 * it never leaves the node and never shows in a process list; only the agent's JSON comes back.
 */
export const STATUS_SCRIPT = `
r=$1 ah=$2 auh=$3 ap=$4 tf=$5 n=$6 nh=$7 nuh=$8 np=$9
cd "$r" 2>/dev/null || { echo "noroot"; exit 0; }
${LIVE_NGINX_FN}printf 'v\\t1\\n'
cur=$(readlink current 2>/dev/null); good=$(readlink good 2>/dev/null)
printf 'current\\t%s\\ngood\\t%s\\n' "$cur" "$good"
for x in "$cur" "$good"; do
  x=\${x%/}; x=\${x##*/}
  case "$x" in ""|*[!0-9a-f]*) continue;; esac
  [ -f ".edgectl/rel/$x" ] && printf 'rec\\t%s\\t%s\\n' "$x" "$(head -c 2048 ".edgectl/rel/$x" | head -n 1)"
done
[ -f current/manifest.json ] && printf 'want\\t%s\\n' "$(sed -n 's/.*"nginxConfigId": *"\\([0-9a-f]\\{1,64\\}\\)".*/\\1/p' current/manifest.json | head -n 1)"
# cert APP BASE64: the leaf (first certificate) of each TLS app's chain in the release, for its expiry.
nc=0
for c in current/nginx/tls/*/chain.pem; do
  [ -f "$c" ] && [ $nc -lt ${MAX_CERTS} ] || continue
  nc=$((nc+1))
  a=\${c%/chain.pem}; a=\${a##*/}
  b=$(sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/{/^-----END/q;/^-----/d;p;}' "$c" 2>/dev/null | head -n 100 | tr -d '\\r\\n')
  [ \${#b} -gt 0 ] && [ \${#b} -le ${MAX_CERT_B64} ] && printf 'cert\\t%s\\t%s\\n' "$a" "$b"
done
ng=
if p=$(live_nginx run/nginx.pid); then
  ng=1
  printf 'nginx\\t%s\\n' "$p"
  w=0
  if [ -r "/proc/$p/task/$p/children" ]; then
    read -r kids <"/proc/$p/task/$p/children"; for k in $kids; do w=$((w+1)); done
  else
    for s in /proc/[0-9]*/stat; do read -r _ _ _ pp _ <"$s" 2>/dev/null && [ "$pp" = "$p" ] && w=$((w+1)); done
  fi
  printf 'workers\\t%s\\n' "$w"
fi
printf 'agentv\\t%s\\n' "$(readlink agent/current 2>/dev/null)"
tok=
if [ -f "$tf" ] && [ ! -L "$tf" ]; then
  read -r tok <"$tf" 2>/dev/null
  case "$tok" in *[!0-9a-f]*) tok=;; esac
  [ \${#tok} -eq 64 ] && printf 'token\\tok\\n' || { tok=; printf 'token\\tbad\\n'; }
else
  printf 'token\\tmissing\\n'
fi
printf 'disk\\t%s\\n' "$(df -Pk . 2>/dev/null | tail -n 1)"
l=; read -r l <"/proc/loadavg" 2>/dev/null; printf 'load\\t%s\\n' "$l"
to=; command -v timeout >/dev/null 2>&1 && to="timeout 5"
# ask NAME HOST URLHOST PORT PATH HOSTHEADER [token]: one GET, its raw answer cut at ${MAX_HTTP_ANSWER} bytes.
ask() {
  printf 'http\\t%s\\n' "$1"
  t=; [ -n "$7" ] && t=$tok
  if [ -n "$curl" ]; then
    { printf 'header = "Host: %s"\\n' "$6"; [ -n "$t" ] && printf 'header = "Authorization: Bearer %s"\\n' "$t"; } | curl -s -i -m 5 -K - "http://$3:$4$5" 2>/dev/null | head -c ${MAX_HTTP_ANSWER}
  else
    printf '%s\\n' "$t" | $to bash -c 'read -r t; exec 3<>"/dev/tcp/$1/$2" || exit 7
      printf "GET %s HTTP/1.0\\r\\nHost: %s\\r\\n" "$3" "$4" >&3
      [ -n "$t" ] && printf "Authorization: Bearer %s\\r\\n" "$t" >&3
      printf "\\r\\n" >&3; cat <&3' edgectl "$2" "$4" "$5" "$6" 2>/dev/null | head -c ${MAX_HTTP_ANSWER}
  fi
  printf '\\n--%s-end--\\n' "$n"
}
curl=; command -v curl >/dev/null 2>&1 && curl=1
if [ -n "$curl" ] || command -v bash >/dev/null 2>&1; then
  [ -n "$ng" ] && ask config "$nh" "$nuh" "$np" /.edgectl/config edgectl.invalid
  # The admin API wants its token for every request, /healthz included.
  [ -n "$tok" ] && ask healthz "$ah" "$auh" "$ap" /healthz "$ah" 1 && ask status "$ah" "$auh" "$ap" /status "$ah" 1
else
  printf 'agent\\tunknown\\n'
fi
exit 0
`;
