import { EdgectlError } from '../errors.js';
import { RE, checkHttpUrl, isAddress, isDomain } from '../fleet/values.js';
import { unbracket } from '../fleet/ip.js';
import { isIP } from 'node:net';

/**
 * The only ways a value reaches nginx.conf. Each helper checks the value against the same
 * whitelists as validation (src/lib/fleet/values.ts) and throws instead of escaping: a value
 * that needs escaping is hostile or a bug. None of the accepted shapes contains whitespace,
 * `;`, `{`, `}`, `#`, `$`, quotes or backslashes, so a value can only ever be one argument of
 * the directive the template wrote, never a new directive or block. (HTML escaping, EJS's
 * default, is the wrong model for nginx syntax: it leaves `;` and newlines alone.)
 */
export function unsafe(what: string, value: unknown): never {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value) : String(value);
  throw new EdgectlError('EDGECTL_RENDER', `refusing to render ${what} ${shown} into nginx config: it is not ${EXPECT[what] ?? 'a safe value'}`);
}

const EXPECT: Record<string, string> = {
  value: 'a plain token of letters, digits and . _ ~ : / * @ + = , % -',
  name: 'a DNS label',
  domain: 'a hostname (or *.hostname) or an IP address',
  path: 'an absolute URL path of letters, digits and . _ ~ / -',
  'absolute path': 'an absolute path of letters, digits and . _ - /',
  'relative path': 'a relative path of letters, digits and . _ - /',
  duration: 'a duration like 30s or 10m',
  number: 'an integer in range',
  address: 'an IP address or hostname (not "unix", which nginx reads as a UNIX socket)',
  'host:port': 'HOST:PORT or [IPv6]:PORT (the host not "unix", which nginx reads as a UNIX socket)',
  'upstream URL': 'a plain http(s) URL (the host not "unix", which nginx reads as a UNIX socket)',
};

/** A plain token: the generic `q()` every template value goes through (also EJS's `<%= %>`). */
const TOKEN = /^[A-Za-z0-9._~:/*@+=,%-]{1,1024}$/;

export function q(v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) unsafe('value', v);
    return String(v);
  }
  if (typeof v !== 'string' || !TOKEN.test(v)) unsafe('value', v);
  return v;
}

export function name(v: unknown): string {
  if (typeof v !== 'string' || !RE.dnsLabel.test(v)) unsafe('name', v);
  return v;
}

/** server_name entries: domains (wildcards only as the leftmost label) or IP addresses. */
export function domain(v: unknown): string {
  if (typeof v !== 'string' || !(isDomain(v) || isIP(v) !== 0)) unsafe('domain', v);
  return v;
}

export function urlPath(v: unknown): string {
  if (typeof v !== 'string' || !RE.httpPath.test(v)) unsafe('path', v);
  return v;
}

export function absPath(v: unknown): string {
  if (typeof v !== 'string' || !RE.absPath.test(v) || v.split('/').includes('..')) unsafe('absolute path', v);
  return v;
}

export function relPath(v: unknown): string {
  if (typeof v !== 'string' || !RE.relPath.test(v) || v.split('/').some((s) => s === '..' || s === '.')) unsafe('relative path', v);
  return v;
}

export function duration(v: unknown): string {
  if (typeof v !== 'string' || !RE.duration.test(v)) unsafe('duration', v);
  return v;
}

export function int(v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): string {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) unsafe('number', v);
  return String(v);
}

function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * HOST:PORT for listen, server and proxy_pass. nginx reads any target that starts with `unix:`
 * (in any case) as a UNIX socket path, so a host named `unix` would turn `unix:8080` into the
 * socket "8080": such a target is never written. IPv6 hosts go in brackets, as nginx wants.
 */
function inetTarget(host: string, port: number, what: string, shown: unknown): string {
  if (!isAddress(host) || host.includes('%')) unsafe(what, shown);
  const out = `${hostForUrl(host)}:${port}`;
  if (/^unix:/i.test(out)) unsafe(what, shown);
  return out;
}

/** The argument of `listen`: [address:]port, IPv6 in brackets. */
export function listen(http: { address?: string; port: number }): string {
  int(http.port, 1, 65535);
  if (http.address === undefined) return String(http.port);
  if (typeof http.address !== 'string') unsafe('address', http.address);
  return inetTarget(http.address, http.port, 'address', http.address);
}

/** HOST:PORT (IPv6 as [addr]:port), as in the agent's listen address or an upstream server. */
export function hostPort(v: unknown): string {
  const m = typeof v === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v) : null;
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) unsafe('host:port', v);
  const host = m[1] ?? m[2];
  // A bare IPv6 address is not HOST:PORT; a bracketed one must be IPv6.
  if ((m[1] !== undefined) !== (isIP(host) === 6)) unsafe('host:port', v);
  return inetTarget(host, Number(m[3]), 'host:port', v);
}

export interface UpstreamTarget {
  scheme: 'http' | 'https';
  /** host:port for an `upstream { server … }` line. */
  server: string;
  host: string;
  /** Path prefix of the URL ("" for none). */
  path: string;
}

/** Splits an upstream URL into what nginx needs, re-checking it on the way. */
export function upstreamTarget(v: unknown): UpstreamTarget {
  if (typeof v !== 'string' || checkHttpUrl(v) !== undefined) unsafe('upstream URL', v);
  const u = new URL(v);
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const host = unbracket(u.hostname);
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80;
  const path = u.pathname === '/' ? '' : u.pathname;
  if (path && !RE.httpPath.test(path)) unsafe('upstream URL', v);
  return { scheme, server: inetTarget(host, port, 'upstream URL', v), host, path };
}
