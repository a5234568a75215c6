import { isIP } from 'node:net';
import { canonicalIP, embeddedIPv4, unbracket, v4, v6Groups } from './ip.js';

/**
 * Which upstreams a tenant's app may name. An upstream is reached from the node itself, so an
 * address of the node reaches whatever trusts it there: the agent's admin API, Kong's admin
 * port. Decisions are made on the address the URL parser settles on, which is what render
 * writes into nginx and Kong (so 127.1, 2130706433, 0x7f000001 and 0177.0.0.1 are all
 * 127.0.0.1 here, as they are to inet_aton). A hostname that resolves to such an address at
 * run time cannot be seen here: that is why the admin API also wants a token.
 */

/** The ports edgectl knows Kong by: nginx sends api traffic to the proxy, apply talks to the admin API. */
export const KONG_PORTS = { proxy: 8000, admin: 8001 } as const;

/**
 * Every port Kong listens on by default that answers without the proxy's auth: the admin API
 * (plain and TLS; it has no token of its own), Kong Manager (GUI) and the status API. Refused
 * as upstream ports on any host, since a name may resolve to the node at run time. Kong's TLS
 * proxy port 8443 is left out: it is the proxy that api apps go through anyway, and a common
 * HTTPS port of real upstreams.
 */
export const KONG_RESERVED_PORTS: ReadonlyMap<number, string> = new Map([
  [KONG_PORTS.proxy, 'Kong\'s proxy port'],
  [KONG_PORTS.admin, 'Kong\'s admin port'],
  [8444, 'Kong\'s TLS admin port'],
  [8002, 'Kong Manager\'s port'],
  [8445, 'Kong Manager\'s TLS port'],
  [8007, 'Kong\'s status API port'],
  [8100, 'Kong\'s status API port'],
]);

/** The host (IPv6 without brackets) and port of an http(s) URL, as render will use them. */
export function upstreamEndpoint(url: string): { host: string; port: number } {
  const u = new URL(url);
  const host = unbracket(u.hostname);
  return { host, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
}

/** `host:port` as an allow-list entry names it (IPv6 in brackets). */
export function endpointKey(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** An allow-list entry `HOST:PORT` in the same form as endpointKey, or undefined if it is not one. */
export function allowKey(entry: string): string | undefined {
  try {
    const { host, port } = upstreamEndpoint(`http://${entry}`);
    return endpointKey(host, port);
  } catch {
    return undefined;
  }
}

function v4Class(n: number): string | undefined {
  const top = n >>> 24;
  if (top === 127) return 'a loopback address';
  if (top === 0) return 'an unspecified ("this host") address, which reaches the node itself';
  if (n >>> 16 === (169 << 8) + 254) return 'a link-local address';
  return undefined;
}

/**
 * Why an address or name is the node's own or on its link, or undefined. `host` is what the
 * URL parser returned (a dotted quad, a compressed IPv6 address without brackets, or a
 * lowercase name).
 */
export function internalHost(host: string): string | undefined {
  const kind = isIP(host);
  if (kind === 4) return v4Class(v4(host));
  if (kind === 6) {
    const g = v6Groups(host);
    const low = g.slice(0, 7).every((x) => x === 0);
    if (low && g[7] === 1) return 'a loopback address';
    if (low && g[7] === 0) return 'an unspecified address, which reaches the node itself';
    if ((g[0] & 0xffc0) === 0xfe80) return 'a link-local address';
    // IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d): the IPv4 address decides.
    const inner = embeddedIPv4(host);
    const why = inner === undefined ? undefined : v4Class(v4(inner));
    if (why) return `${why} (IPv4 inside IPv6)`;
    return undefined;
  }
  const labels = host.split('.');
  if (labels.some((l) => ['localhost', 'localhost6', 'ip6-localhost', 'ip6-loopback'].includes(l))) return 'a name for the node itself (localhost)';
  if (labels.length === 1) return 'a single-label name, which the node resolves through its own /etc/hosts and search domains (where its own name is often 127.0.1.1)';
  if (labels[labels.length - 1] === 'local') return 'a multicast DNS (.local) name, resolved on the node\'s own link';
  return undefined;
}

/**
 * The form addresses are compared in: the URL parser's, with IPv4 inside IPv6 as IPv4, so that
 * every spelling of one address is equal (`[::ffff:203.0.113.20]` is 203.0.113.20: nginx
 * connects to it as IPv4).
 */
export function canonicalHost(host: string): string | undefined {
  try {
    return canonicalIP(upstreamEndpoint(`http://${isIP(host) === 6 ? `[${host}]` : host}/`).host);
  } catch {
    return undefined;
  }
}
