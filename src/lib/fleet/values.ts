import { isIP } from 'node:net';
import { unbracket } from './ip.js';

/**
 * The value grammars of the fleet format. Everything that can reach nginx.conf, Kong config, a
 * shell command or a file path is one of these whitelisted shapes: none admits whitespace,
 * `;`, `{`, `}`, `#`, `$`, quotes or backslashes. The renderer re-checks with the same predicates.
 */
export const RE = {
  dnsLabel: /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
  hostLabel: /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
  labelKey: /^[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?$/,
  labelValue: /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
  topic: /^[a-z0-9](?:[a-z0-9_-]{0,62})$/,
  sha256: /^[0-9a-f]{64}$/,
  duration: /^[1-9][0-9]{0,8}(?:ms|s|m|h|d)$/,
  absPath: /^\/(?:[A-Za-z0-9._-]+\/?)*$/,
  // No segment starts with "." or "-": no ../ escapes, nothing a command could read as an option.
  relPath: /^[A-Za-z0-9_][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/,
  fileName: /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/,
  httpPath: /^\/[A-Za-z0-9._~/-]*$/,
  sshUser: /^[a-z_][a-z0-9_-]{0,31}$/,
  envName: /^[A-Z][A-Z0-9_]{0,63}$/,
  hostKey: /^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|rsa-sha2-256|rsa-sha2-512) [A-Za-z0-9+/]+={0,3}$/,
  // Free text shown to people (display names): printable, no control characters (C0, DEL, C1),
  // no bidi controls (which make text read otherwise than it is), no markup breakers. YAML's
  // escapes ("\u202E") reach the value, so the value is checked, not only the file's bytes.
  text: /^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069{};$#"'`\\<>]{1,200}$/,
  /** Notes for people (annotations): the same without the markup rule, up to 1000 characters. */
  note: /^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,1000}$/,
  httpMethod: /^(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/,
  urlPathPart: /^(?:\/[A-Za-z0-9._~%/-]*)?$/,
} as const;

/**
 * A DNS hostname in lowercase LDH form. The last label may not look like a number, decimal or
 * hex (RFC 3696): a resolver (inet_aton) or a URL parser reads `0x7f000001` or `127.1` as an IPv4
 * address, and a mistyped address such as 203.0.113.300 must not be taken for a name.
 */
export function isHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const labels = s.split('.');
  if (/^(?:[0-9]+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1])) return false;
  return labels.every((l) => RE.hostLabel.test(l));
}

/** A domain an app serves: a hostname, or `*.` followed by one, the wildcard only as the whole leftmost label. */
export function isDomain(s: string): boolean {
  if (s.startsWith('*.')) return isHostname(s.slice(2)) && s.slice(2).includes('.');
  return isHostname(s) && s.includes('.');
}

/** An IP address (IPv6 without a zone index, which nginx cannot parse) or a hostname. */
export function isAddress(s: string): boolean {
  return (isIP(s) !== 0 && !s.includes('%')) || isHostname(s);
}

/**
 * nginx reads a listen, server or proxy_pass target that starts with `unix:` as a UNIX socket
 * path: a host named `unix` (with its port, `unix:8080`) would become the socket "8080".
 */
export const UNIX_HOST_REASON = 'the hostname "unix" cannot be used: nginx reads "unix:PORT" as a UNIX socket path, not a host';

/** A duration in nginx's own units (ms, s, m, h, d), returned in seconds. */
export function durationSeconds(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (!m) return NaN;
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600, d: n * 86400 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
}

/**
 * A plain http(s) URL with a host: no credentials, no fragment, no characters that mean
 * anything to nginx or a shell. Returns a reason when it is not one.
 */
export function checkHttpUrl(s: string, opts: { allowQuery?: boolean } = {}): string | undefined {
  if (!/^https?:\/\//.test(s)) return 'must start with http:// or https://';
  if (s.length > 2048) return 'is longer than 2048 characters';
  if (!/^https?:\/\/[^/?#]/.test(s)) return 'has no host';
  if (!/^[\x21-\x7e]+$/.test(s)) return 'must be printable ASCII without spaces (write international names in punycode)';
  if (/[\s;{}#$"'`\\<>|^]/.test(s)) return 'contains characters that are not allowed in a URL here (whitespace, ; { } # $ quotes \\ < > | ^)';
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'is not a valid URL';
  }
  if (!u.hostname) return 'has no host';
  if (u.username || u.password || s.replace(/^https?:\/\//, '').split('/')[0].includes('@')) return 'must not carry credentials (user:password@)';
  if (u.port === '0') return 'has port 0; a port must be between 1 and 65535';
  const host = unbracket(u.hostname);
  if (!(isIP(host) !== 0 || isHostname(host))) return `host "${u.hostname}" is neither an IP address nor a hostname`;
  if (host === 'unix') return `has ${UNIX_HOST_REASON}`;
  // The URL parser reads 127.1, 2130706433, 0x7f.1 and 0177.0.0.1 as 127.0.0.1 (as inet_aton does),
  // and decodes %-escapes: the host must be written as what it is, so that what a reviewer reads
  // is what nginx gets. (IPv6 may be written in any of its forms: they mean one address.)
  const written = writtenHost(s).toLowerCase();
  if (isIP(host) !== 6 && written !== u.hostname) {
    return isIP(host) === 4
      ? `host "${written}" is the IPv4 address ${host} in a short, decimal, octal or hexadecimal form: write ${host}`
      : `host "${written}" must be written as ${host}`;
  }
  if (!RE.urlPathPart.test(u.pathname === '/' && !s.replace(/^https?:\/\/[^/]*/, '').startsWith('/') ? '' : u.pathname)) return 'path contains characters that are not allowed';
  if (u.search && !opts.allowQuery) return 'must not have a query string';
  if (u.search && !/^\?[A-Za-z0-9._~=&%-]*$/.test(u.search)) return 'query contains characters that are not allowed';
  return undefined;
}

/**
 * Where a node's release root may be: apply creates, swaps and deletes directories under it
 * as root, so only places meant for a service's data qualify, and at least one directory below
 * them (never /srv itself). An allow-list, since a deny-list of system directories missed
 * /usr/bin, /etc/ssh, /root/.ssh and /etc/cron.d and every other spelling of them.
 */
export const RELEASE_ROOT_PREFIXES = ['/var/lib/', '/var/opt/', '/srv/', '/data/'] as const;
/** A segment that makes a root edgectl's own: `edgectl`, or `edgectl` followed by `-`, `_` or `.` and more. */
export const RELEASE_ROOT_OWN = /^edgectl(?:[-_.][A-Za-z0-9._-]+)?$/;

/**
 * Why a release root is refused, or undefined. The root is checked as written and must be
 * written canonically (one "/" between segments, no "." or ".." segment), so no other spelling
 * of a path (`/./etc`, `//etc`, `/srv/../etc`) reaches the prefix check; trailing slashes are
 * dropped as everywhere else. A link on the node (/srv/x -> /etc) is the node's own affair.
 */
export function releaseRootProblem(root: string): string | undefined {
  const r = root.replace(/\/+$/, '');
  if (!RE.absPath.test(root) || r === '') return 'must be an absolute path of letters, digits, ".", "_", "-" and "/"';
  if (r.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) return `must be written canonically: no empty, "." or ".." segments (${JSON.stringify(root)})`;
  const prefix = RELEASE_ROOT_PREFIXES.find((p) => r.startsWith(p) && r.length > p.length);
  if (!prefix) return `must be a directory below ${RELEASE_ROOT_PREFIXES.join(', ')} (a place for data, not /etc, /usr, /root, /tmp or /proc)`;
  // Below a data prefix live other programs' state too (/var/lib/dpkg, /srv/www/app/releases),
  // and apply prunes releases/ there: the root must be edgectl's own by its name.
  if (!r.slice(prefix.length).split('/').some((seg) => RELEASE_ROOT_OWN.test(seg))) {
    return `must be a directory of edgectl's own: a path segment below ${prefix} named edgectl or edgectl-*, such as ${prefix}edgectl (not another program's state like /var/lib/dpkg, nor another app's releases)`;
  }
  return undefined;
}

/** The host of an http(s) URL as written, before the URL parser normalises it. */
function writtenHost(s: string): string {
  const authority = s.replace(/^https?:\/\//, '').split(/[/?#]/)[0];
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  return authority.replace(/:[0-9]*$/, '');
}


/** `N` or `N%`, as used by rollout sizes. */
export const COUNT_OR_PERCENT = /^(?:[0-9]{1,6}|(?:100|[1-9]?[0-9])%)$/;
