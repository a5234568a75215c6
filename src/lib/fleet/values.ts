import { isIP } from 'node:net';

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
  // Free text shown to people (display names): printable, no control characters, no markup breakers.
  text: /^[^\u0000-\u001f\u007f{};$#"'`\\<>]{1,200}$/,
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

export function isAddress(s: string): boolean {
  return isIP(s) !== 0 || isHostname(s);
}

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
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (!(isIP(host) !== 0 || isHostname(host))) return `host "${u.hostname}" is neither an IP address nor a hostname`;
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

/** The host of an http(s) URL as written, before the URL parser normalises it. */
function writtenHost(s: string): string {
  const authority = s.replace(/^https?:\/\//, '').split(/[/?#]/)[0];
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  return authority.replace(/:[0-9]*$/, '');
}

/** Directories a node's release root must never be: apply creates and replaces things under it. */
export const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/root', '/run', '/sbin', '/sys', '/usr', '/var', '/tmp', '/home']);

/** `N` or `N%`, as used by rollout sizes. */
export const COUNT_OR_PERCENT = /^(?:[0-9]{1,6}|(?:100|[1-9]?[0-9])%)$/;
