import { isIP } from 'node:net';

/**
 * One spelling per address. An IP can be written many ways (`2001:db8:0::5`, `2001:0db8::5`,
 * `::ffff:203.0.113.20`): whatever compares addresses (own-node upstreams, host-key pins against
 * the operator's known_hosts) compares canonical forms, and the fleet is asked to write them so.
 */

/** The 32 bits of a dotted-quad IPv4 address. */
export function v4(s: string): number {
  return s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}

function dotted(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The eight 16-bit groups of an IPv6 address (hex groups, one optional `::`, an optional dotted tail). */
export function v6Groups(s: string): number[] {
  let text = s;
  const tail4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail4) {
    const n = v4(tail4[1]);
    text = `${text.slice(0, tail4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const a = head ? head.split(':') : [];
  const b = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - a.length - b.length).fill('0');
  return [...a, ...fill, ...b].map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address inside an IPv6 one, or undefined: mapped `::ffff:a.b.c.d`, compatible
 * `::a.b.c.d` (not `::` or `::1`) and NAT64 `64:ff9b::a.b.c.d`. nginx and the kernel connect to
 * a mapped address as plain IPv4, so it is that IPv4 address.
 */
export function embeddedIPv4(host: string): string | undefined {
  if (isIP(host) !== 6) return undefined;
  const g = v6Groups(host);
  const zero5 = g.slice(0, 5).every((x) => x === 0);
  const mapped = zero5 && g[5] === 0xffff;
  const compatible = zero5 && g[5] === 0 && g[6] !== 0;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  return mapped || compatible || nat64 ? dotted(g[6] * 65536 + g[7]) : undefined;
}

/** An IPv6 address as the URL parser writes it (RFC 5952: lowercase, compressed, no leading zeros). */
export function canonicalIPv6(host: string): string {
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/** The one form an IP address is compared in: IPv4 inside IPv6 as IPv4, IPv6 compressed; names as they are. */
export function canonicalIP(host: string): string {
  if (isIP(host) !== 6) return host;
  return embeddedIPv4(host) ?? canonicalIPv6(host);
}

/** Why an address is not written in its one spelling, or undefined (names and dotted quads pass). */
export function ipSpellingProblem(s: string): string | undefined {
  if (isIP(s) !== 6) return undefined;
  const inner = embeddedIPv4(s);
  if (inner) return `is the IPv4 address ${inner} written inside IPv6: write ${inner}`;
  const c = canonicalIPv6(s);
  return c === s ? undefined : `must be written in its canonical form ${c} (lowercase, compressed, no leading zeros)`;
}

/**
 * A host as URLs and HOST:PORT write it, without the brackets around an IPv6 address
 * (`[2001:db8::1]` → `2001:db8::1`, what `new URL().hostname` gives); anything else as it is.
 */
export function unbracket(host: string): string {
  return host.length >= 2 && host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** HOST:PORT (IPv6 as `[addr]:port`) split at its last colon, the host unbracketed: listen addresses as the fleet and agent.json write them. */
export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: unbracket(hp.slice(0, i)), port: Number(hp.slice(i + 1)) };
}
