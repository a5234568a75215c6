import { describe, expect, it } from 'vitest';
import { type AccessLine, fastAccessLine, parseAccessJson, parseAccessLine, scanAccessLines } from '../../src/lib/agent/metering/access-line.js';
import { addSample, emptyMinutes, LineCounter } from '../../src/lib/agent/metering/minutes.js';

/**
 * The access-log line's fast path against JSON.parse: on every line, generated as nginx's
 * escape=json writes edgectl's log_format and then mutated (cut, chars inserted, dropped or
 * changed, numbers respelled), the fast path either gives up or gives JSON.parse's own verdict.
 */
let seed = 7;
const rnd = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];
/** A good value four times in five. */
const mostly = <T>(good: readonly T[], bad: readonly T[]): T => (rnd(5) > 0 ? pick(good) : pick(bad));

/** nginx's escape=json: " and \ escaped, control characters as \n \r \t \b \f or \u00XX, the rest as is. */
function nginxJson(v: string): string {
  let o = '';
  for (const ch of v) {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\') o += `\\${ch}`;
    else if (c < 0x20) o += ({ 10: '\\n', 13: '\\r', 9: '\\t', 8: '\\b', 12: '\\f' } as Record<number, string>)[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    else o += ch;
  }
  return o;
}

const ALPHABET = ['a', 'z', '0', '/', '?', '=', '&', '"', '\\', ',', ':', '{', '}', ' ', '\n', '\t', '\x01', 'é', '中', '😀', '","status":1,"x":"', '\\u0041'];
const junk = (max: number) => Array.from({ length: rnd(max) }, () => pick(ALPHABET)).join('');

function line(): string {
  const time = mostly(['2026-12-02T14:20:01+00:00', '2026-12-02T14:20:02+08:00'], ['2026-02-30T99:00:00+00:00', 'yesterday', '']);
  const tenant = mostly(['acme', 'globex', '-'], ['Bad_Tenant', '', 'a'.repeat(70), 'ac"me']);
  const app = mostly(['www', 'pos-api'], ['-', 'x y', '']);
  const status = mostly(['200', '404', '502', '0', '999'], ['1000', '1200']);
  const sent = String(pick([0, 1, 1234, 99999999, 2 ** 52]));
  const len = String(pick([0, 87, 4096]));
  const rt = pick(['0.000', '0.001', '12.345', '3']);
  const up = pick(['-', '', '0.002', '0.002, 0.004', '0.001 : 0.003', 'x']);
  const cache = pick(['HIT', 'MISS', 'STALE', 'BYPASS', '-', '']);
  return `{"time":"${nginxJson(time)}","tenant":"${nginxJson(tenant)}","app":"${nginxJson(app)}",` +
    `"host":"${nginxJson(junk(12))}","method":"${nginxJson(pick(['GET', 'POST', junk(4)]))}","uri":"${nginxJson(junk(30))}","status":${status},` +
    `"bytes_sent":${sent},"request_length":${len},"request_time":${rt},` +
    `"upstream_time":"${nginxJson(up)}","cache":"${nginxJson(cache)}","remote_addr":"${pick(['127.0.0.1', '2001:db8::1', ''])}"}`;
}

function mutate(s: string): string {
  const i = rnd(s.length + 1);
  switch (rnd(8)) {
    case 0: return s.slice(0, i); // cut (a torn last line)
    case 1: return s.slice(0, i) + pick(ALPHABET) + s.slice(i);
    case 2: return s.slice(0, i) + s.slice(i + 1 + rnd(3));
    case 3: return s.slice(0, i) + pick(['"', '\\', '0', ' ', '}', '\x00', '-', '.', 'e']) + s.slice(i + 1);
    case 4: return s.replace(/"status":(\d+)/, (_m, d: string) => `"status":${pick(['0', '-', '+', ' ', '00'])}${d}`);
    case 5: return s.replace(/"request_time":([\d.]+)/, (_m, d: string) => `"request_time":${pick(['0', '-', '.', ''])}${d}${pick(['', 'e3', '.', '.5'])}`);
    case 6: return `${s}${pick([' ', '\n', '}', ',{}'])}`;
    default: return s.slice(0, i) + s.slice(rnd(s.length)); // a line spliced onto another's part
  }
}

describe('access-log line: the fast path gives JSON.parse\'s verdict or gives up', () => {
  it('on 20,000 generated lines and 40,000 mutations', () => {
    let fast = 0;
    let clean = 0;
    for (let n = 0; n < 20_000; n++) {
      const l = line();
      const want = parseAccessJson(l);
      expect(parseAccessLine(l), l).toEqual(want);
      const f = fastAccessLine(l);
      if (f !== undefined) {
        expect(f, l).toEqual(want);
        fast++;
      }
      if (typeof want === 'object') clean++;
      for (let m = 0; m < 2; m++) {
        const x = mutate(l);
        const fx = fastAccessLine(x);
        if (fx !== undefined) expect(fx, JSON.stringify(x)).toEqual(parseAccessJson(x));
      }
    }
    expect(clean, 'the generator makes good lines too').toBeGreaterThan(1_000);
    // Lines whose tenant, app, time and the like need no escapes (most of nginx's) take the fast path.
    expect(fast).toBeGreaterThan(10_000);
  });

  it('on bytes (what the agent runs): every line of a buffer gets JSON.parse\'s verdict on its UTF-8 text, invalid bytes and windows included', () => {
    seed = 11;
    const BYTES = [[0xff], [0xc3], [0xe4, 0xb8], [0x80], [0xc3, 0x22], [0xf0, 0x9f, 0x98], [0xa0], [0xc2, 0xa0]];
    const lines: Buffer[] = [];
    for (let n = 0; n < 20_000; n++) {
      let l = Buffer.from(rnd(3) === 0 ? mutate(line()) : line());
      if (rnd(4) === 0) {
        const i = rnd(l.length + 1);
        l = Buffer.concat([l.subarray(0, i), Buffer.from(pick(BYTES)), l.subarray(i + (rnd(2) ? 0 : 1))]);
      }
      if (rnd(10) === 0) l = Buffer.from(line().replace(/"upstream_time":"[^"]*"/, `"upstream_time":"${pick(['0.5', ' 1.25 ,2', '1:2', '12.3456', '0001.1', '1234567890', '1.', '.5', '1 2', '3,', ',', '- , 0.010', '\u00a01', 'x'.repeat(201), `${'1,'.repeat(100)}1`])}"`));
      lines.push(l);
    }
    const all = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    const want = all.toString('utf8').split('\n').filter((l) => l.length > 0).map(parseAccessJson);
    const got: (AccessLine | string)[] = [];
    scanAccessLines(all, all.length, (l) => got.push(typeof l === 'object' ? { ...l } : l));
    expect(got.length).toBe(want.length);
    const texts = all.toString('utf8').split('\n').filter((l) => l.length > 0);
    for (let i = 0; i < want.length; i++) expect(got[i], JSON.stringify(texts[i])).toEqual(want[i]);
    expect(got.filter((g) => typeof g === 'object').length, 'good lines too').toBeGreaterThan(2_000);
    // The same lines one buffer each (no window boundary to lean on).
    for (const l of lines.slice(0, 3000)) {
      const one = Buffer.concat([l, Buffer.from('\n')]);
      const w = one.toString('utf8').split('\n').filter((x) => x.length > 0).map(parseAccessJson);
      const g: (AccessLine | string)[] = [];
      scanAccessLines(one, one.length, (x) => g.push(typeof x === 'object' ? { ...x } : x));
      expect(g, JSON.stringify(l.toString('latin1'))).toEqual(w);
    }
  });

  it('LineCounter counts as addSample does', () => {
    seed = 3;
    const a = emptyMinutes();
    const b = emptyMinutes();
    const c = new LineCounter();
    for (let n = 0; n < 5000; n++) {
      const l = parseAccessJson(line());
      if (typeof l !== 'object') continue;
      const m = { ...l, time: l.time + rnd(4) * 30_000, upstreamMs: pick([null, 3, 150, 4000]) };
      addSample(a, { ...m, app: `${m.tenant}.${m.app}` });
      c.add(b, m);
      if (n === 2500) { a.watermark = b.watermark = Date.parse('2026-12-02T14:21:00Z'); }
    }
    expect(JSON.parse(JSON.stringify(b))).toEqual(JSON.parse(JSON.stringify(a)));
  });

  it('a line as nginx writes it for a real request', () => {
    const l = '{"time":"2026-12-02T14:20:01+00:00","tenant":"acme","app":"www","host":"www.acme.example","method":"GET","uri":"/a?q=\\"x\\"","status":200,"bytes_sent":1234,"request_length":87,"request_time":0.004,"upstream_time":"0.002, 0.001","cache":"HIT","remote_addr":"127.0.0.1"}';
    expect(fastAccessLine(l)).toEqual({ tenant: 'acme', app: 'www', time: Date.parse('2026-12-02T14:20:01Z'), status: 200, bytesIn: 87, bytesOut: 1234, cache: 'hit', upstreamMs: 3 });
  });
});
