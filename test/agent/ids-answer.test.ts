import { describe, expect, it } from 'vitest';
import { idsAnswer, ndjsonSpans } from '../../src/lib/agent/http/device.js';
import { idList } from '../../src/lib/agent/store/spool.js';

describe('the answer to an NDJSON batch', () => {
  it('is the text JSON.stringify gives for the same ids, for a range and for a stored list', () => {
    // Across a power of ten (9 -> 10, 99,999 -> 100,000, 9,999,990 -> 10,000,014), from 0, near 2^53.
    for (const [prefix, first, count] of [['edge-1:0a1b2c3d:', 0, 1], ['edge-1:0a1b2c3d:', 41, 1000], ['n.x_y:e:', 9_999_990, 25], ['a:', 9, 3], ['a:', 0, 1000], ['a:', 99_995, 10], ['a:', 2 ** 53 - 10, 9]] as const) {
      const text = idsAnswer({ prefix, first, count });
      const ids = Array.from({ length: count }, (_, k) => `${prefix}${first + k}`);
      expect(text).toBe(JSON.stringify({ ids }));
      expect(idList({ prefix, first, count })).toEqual(ids);
    }
    expect(idsAnswer(['a:b:1', 'a:b:7'])).toBe('{"ids":["a:b:1","a:b:7"]}');
  });

  it('falls back to JSON.stringify for a prefix JSON would escape', () => {
    const prefix = 'we"ird\\node:e:';
    const text = idsAnswer({ prefix, first: 3, count: 2 });
    expect(JSON.parse(text)).toEqual({ ids: [`${prefix}3`, `${prefix}4`] });
  });

  it('spans of an NDJSON body: each line without its CR, a bad or empty line refuses the whole batch', () => {
    const body = Buffer.from('{"a":1}\r\n[2]\n"x"');
    const spans = ndjsonSpans(body, 100, 10);
    expect(typeof spans).not.toBe('string');
    const lines = [];
    for (let i = 0; i < (spans as Uint32Array).length; i += 2) lines.push(body.toString('utf8', (spans as Uint32Array)[i], (spans as Uint32Array)[i + 1]));
    expect(lines).toEqual(['{"a":1}', '[2]', '"x"']);
    expect(ndjsonSpans(Buffer.from('{"a":1}\n\n{"b":2}\n'), 100, 10)).toBe('line 2 is empty; nothing was stored');
    expect(ndjsonSpans(Buffer.from('{"a":1}\n{"b":\n'), 100, 10)).toBe('line 2 is not valid JSON (or not UTF-8); nothing was stored');
    expect(ndjsonSpans(Buffer.from('1\n2\n3\n'), 100, 2)).toBe('too many messages: more than 2 lines');
    expect(ndjsonSpans(Buffer.from(`"${'x'.repeat(20)}"\n`), 10, 5)).toBe('too large: line 1 exceeds 10 bytes');
    // More lines than the first allocation holds (1,024): the spans grow.
    const many = Buffer.from(Array.from({ length: 3000 }, (_, i) => String(i)).join('\n'));
    const s = ndjsonSpans(many, 100, 5000) as Uint32Array;
    expect(s.length).toBe(6000);
    expect(many.toString('utf8', s[5998], s[5999])).toBe('2999');
  });
});
