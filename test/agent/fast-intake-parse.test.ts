import { describe, expect, it } from 'vitest';
import { plainRequest } from '../../src/lib/agent/http/fast-intake.js';
import { RE } from '../../src/lib/fleet/values.js';
import { CONTENT_TYPE } from '../../src/lib/agent/store/record.js';
import { mulberry32 as rng } from '../helpers/prng.js';

// The front's request parser (fast-intake.ts) is a single pass over bytes. Its rules were first
// written as the regexes below, which are easy to read and check; the byte parser must take
// exactly what they take and read the same fields from it, on every request generated here.

const REQUEST_LINE = /^POST \/v1\/q\/([^ ]*) HTTP\/1\.1$/;
const NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE = /^[\x20-\x7e\t]*$/;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;
const NDJSON = /^application\/(x-)?ndjson\b/i;
const PLAIN = new Set(['host', 'authorization', 'content-type', 'content-length', 'connection', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'sec-fetch-mode']);

function reference(buf: Buffer, maxBody: number) {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1 || end > 8192) return undefined;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const rl = REQUEST_LINE.exec(lines[0]);
  if (!rl || !RE.topic.test(rl[1]) || lines.length - 1 > 64) return undefined;
  const seen = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0 || !NAME.test(line.slice(0, colon))) return undefined;
    const raw = line.slice(colon + 1);
    if (!VALUE.test(raw)) return undefined;
    const name = line.slice(0, colon).toLowerCase();
    if (!PLAIN.has(name) || seen.has(name)) return undefined;
    seen.set(name, raw.replace(/^[ \t]+/, '').replace(/[ \t]+$/, ''));
  }
  if (!seen.has('host')) return undefined;
  const conn = seen.get('connection');
  if (conn !== undefined && conn.toLowerCase() !== 'keep-alive') return undefined;
  const cl = seen.get('content-length');
  if (cl === undefined || !/^\d{1,9}$/.test(cl)) return undefined;
  const length = Number(cl);
  if (length > maxBody || buf.length < end + 4 + length) return undefined;
  const token = BEARER.exec(seen.get('authorization') ?? '')?.[1];
  const contentType = seen.get('content-type') ?? 'application/octet-stream';
  if (!token || !CONTENT_TYPE.test(contentType) || NDJSON.test(contentType)) return undefined;
  return { topic: rl[1], token, contentType, length, headEnd: end + 4 };
}


const NAMES = ['Host', 'host', 'HOST', 'Authorization', 'authorization', 'Content-Type', 'content-type', 'Content-Length', 'CONTENT-LENGTH', 'Connection',
  'User-Agent', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Sec-Fetch-Mode', 'Transfer-Encoding', 'Expect', 'Idempotency-Key', 'X-Other', 'Hos', 'Hostt', 'Content-Lengt'];
const ODD = ['\r', '\n', '\t', ' ', '\u0000', '\u0001', '\u007f', '\u00e9', ':', '\r\n', '\r\n ', ' \r\n'];

function generate(r: () => number): Buffer {
  // The first choice is the plain one, taken most of the time, so that both answers are common.
  const pick = <T>(xs: T[]): T => (r() < 0.75 ? xs[0] : xs[Math.floor(r() * xs.length)]);
  const body = 'x'.repeat(Math.floor(r() * 40));
  const headers: [string, string][] = [
    ['Host', pick(['edge', ' edge ', '', '\tedge'])],
    ['Authorization', pick(['Bearer tok-acme', 'Bearer  tok', 'bearer tok', 'Bearer ', `Bearer ${'t'.repeat(512)}`, `Bearer ${'t'.repeat(513)}`, ' Bearer tok\t', 'Bearer tok tok', 'Basic x'])],
    ['Content-Type', pick(['application/json', 'application/x-ndjson', 'Application/NDJSON', 'text/plain; charset=utf-8', '', ' a ', 'a\tb', 'x'.repeat(101)])],
    ['Content-Length', pick([String(body.length), ` ${body.length} `, '0', '-1', '1e3', String(body.length + 5), '0123456789', '', '99999999', '+1'])],
  ];
  if (r() < 0.3) headers.push(['Connection', pick(['keep-alive', 'Keep-Alive', 'close', 'keep-alive, upgrade', ''])]);
  const extra = Math.floor(r() * 4);
  for (let i = 0; i < extra; i++) headers.push([pick(NAMES), pick(['x', '', ' y ', '1'])]);
  // Shuffle, sometimes drop or duplicate one.
  for (let i = headers.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [headers[i], headers[j]] = [headers[j], headers[i]]; }
  if (r() < 0.1) headers.splice(Math.floor(r() * headers.length), 1);
  if (r() < 0.1) headers.push(headers[Math.floor(r() * headers.length)]);
  const topic = pick(['events', 'a', 'a-b_c', 'Events', '', 'e v', 'x'.repeat(63), 'x'.repeat(64), '-a', 'ev%20']);
  const line = pick([`POST /v1/q/${topic} HTTP/1.1`, `POST /v1/q/${topic} HTTP/1.0`, `GET /v1/q/${topic} HTTP/1.1`, `POST /v1/q/${topic}  HTTP/1.1`, `POST /v1/q/${topic} HTTP/1.1 `, 'POST /v1/q/ HTTP/1.1', 'POST /v1/q/HTTP/1.1']);
  let head = [line, ...headers.map(([n, v]) => `${n}:${r() < 0.5 ? ' ' : ''}${v}`)].join('\r\n');
  // Mutations at a random place: an odd character, a cut, a colon.
  const mutations = r() < 0.7 ? 0 : 1 + Math.floor(r() * 2);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(r() * head.length);
    head = r() < 0.8 ? head.slice(0, at) + pick(ODD) + head.slice(at) : head.slice(0, at) + head.slice(at + 1);
  }
  const full = Buffer.from(`${head}\r\n\r\n${body}${r() < 0.2 ? 'POST /v1/q/next HTTP/1.1\r\n' : ''}`, 'latin1');
  // Sometimes only part of it has arrived.
  return r() < 0.1 ? full.subarray(0, Math.floor(r() * full.length)) : full;
}

describe('fast intake request parser', () => {
  it('takes a plain request and reads its fields', () => {
    const buf = Buffer.from('POST /v1/q/events HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer tok-acme\r\nContent-Type:  application/json \r\nContent-Length: 2\r\n\r\n{}');
    expect(plainRequest(buf, 1024)).toEqual({ topic: 'events', token: 'tok-acme', contentType: 'application/json', length: 2, headEnd: buf.length - 2 });
  });

  it('leaves to Node what is not of the plainest shape', () => {
    const ok = 'POST /v1/q/events HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n';
    expect(plainRequest(Buffer.from(`${ok}\r\n{}`), 1024)?.contentType).toBe('application/octet-stream');
    for (const odd of [
      `${ok}Transfer-Encoding: chunked\r\n\r\n{}`, // another framing
      `${ok}Content-Length: 2\r\n\r\n{}`, // twice
      `${ok}X-Fold: a\r\n b\r\n\r\n{}`, // folded
      `${ok}X-Bad: a\nb\r\n\r\n{}`, `${ok}Accept: a\rb\r\n\r\n{}`, `${ok}Accept: a\u0000\r\n\r\n{}`, // bare LF, bare CR, NUL
      `${ok}Connection: close\r\n\r\n{}`, `${ok}Content-Type: application/x-ndjson\r\n\r\n{}`,
      `${ok}\r\n{`, // body not all read
      ok.replace('Host: edge\r\n', '') + '\r\n{}', ok.replace(' 2', ' 2000') + '\r\n{}', // no Host, over the limit
      ok.replace('events', 'Events') + '\r\n{}', ok.replace('HTTP/1.1', 'HTTP/1.0') + '\r\n{}',
    ]) expect([odd, plainRequest(Buffer.from(odd, 'latin1'), 1024)]).toEqual([odd, undefined]);
  });

  it('agrees with the regex form on 200,000 generated requests', () => {
    let taken = 0;
    for (let seed = 1; seed <= 200_000; seed++) {
      const buf = generate(rng(seed));
      const want = reference(buf, 1024);
      const got = plainRequest(buf, 1024);
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ seed, request: buf.toString('latin1'), got }).toEqual({ seed, request: buf.toString('latin1'), got: want });
      if (want) taken++;
    }
    // The generator must reach both answers often, or the comparison says little.
    expect(taken).toBeGreaterThan(2_000);
    expect(taken).toBeLessThan(150_000);
  });
});
