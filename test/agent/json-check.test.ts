import { describe, expect, it } from 'vitest';
import { isJsonText } from '../../src/lib/agent/http/json-check.js';
import { mulberry32 as rng } from '../helpers/prng.js';

// The NDJSON line check must agree with JSON.parse on every valid UTF-8 input (differential test),
// and refuse what is not UTF-8 or nested past the limit.

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function parses(b: Buffer): boolean {
  try {
    JSON.parse(utf8.decode(b));
    return true;
  } catch {
    return false;
  }
}
function validUtf8(b: Buffer): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}


function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return [0, -0.5, 1e21, 123456789, -7e-9, 3.25][Math.floor(r() * 6)];
    case 3: return ['', 'plain', 'quote " and \\ slash', 'tab\tnew\nline', 'ü 中文 😀', '\u0001\u001f', '\ud800'][Math.floor(r() * 7)];
    case 4: return 'x'.repeat(Math.floor(r() * 20));
    case 5: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, (_, i) => [`k${i}${['', 'é', '"'][i % 3]}`, randomValue(r, depth + 1)]));
  }
}

const ALPHABET = Buffer.from(' \t\r\n{}[]:,"\\/-+.0123456789eEtrufalsn\u0000\u001fx', 'latin1');

function mutate(r: () => number, b: Buffer): Buffer {
  const bytes = [...b];
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (bytes.length + 1));
    const c = r() < 0.9 ? ALPHABET[Math.floor(r() * ALPHABET.length)] : Math.floor(r() * 256);
    const op = Math.floor(r() * 3);
    if (op === 0) bytes.splice(at, 0, c);
    else if (op === 1) bytes.splice(at, 1);
    else bytes[Math.min(at, bytes.length - 1)] = c;
  }
  return Buffer.from(bytes);
}

describe('isJsonText (NDJSON line check)', () => {
  it('agrees with JSON.parse on 20,000 generated and mutated values', () => {
    const r = rng(20261127);
    let valid = 0;
    let invalid = 0;
    for (let i = 0; i < 20_000; i++) {
      let b: Buffer = Buffer.from(JSON.stringify(randomValue(r)) ?? 'null');
      if (r() < 0.3) b = Buffer.concat([Buffer.from(' \t'.slice(0, Math.floor(r() * 3))), b, Buffer.from('\r\n ')]);
      if (i % 2 === 1) b = mutate(r, b);
      const expected = validUtf8(b) ? parses(b) : false;
      if (isJsonText(b) !== expected) throw new Error(`case ${i}: ${JSON.stringify(b.toString('latin1'))} should be ${expected}`);
      if (expected) valid++;
      else invalid++;
    }
    // Both outcomes were exercised in quantity, so the agreement means something.
    expect(valid).toBeGreaterThan(10_000);
    expect(invalid).toBeGreaterThan(5_000);
  });

  it('checks only the given range of a larger buffer', () => {
    const b = Buffer.from('xx{"a":[1,2]}yy');
    expect(isJsonText(b, 2, 13)).toBe(true);
    expect(isJsonText(b, 2, 12)).toBe(false);
    expect(isJsonText(b, 1, 13)).toBe(false);
  });

  it.each([
    ['', false], [' ', false], ['{}', true], ['[]', true], ['0', true], ['-0', true], ['01', false], ['1.', false], ['.5', false],
    ['1e', false], ['1e+', false], ['1E-2', true], ['-', false], ['tru', false], ['true', true], ['nul', false], ['"\\u12"', false],
    ['"\\u00e9"', true], ['"\\x"', false], ['[1,]', false], ['{"a":1,}', false], ['{"a" 1}', false], ['{1:2}', false], ['[1 2]', false],
    ['"a"b', false], ['{}{}', false], ['\ufeff{}', false], ['"\t"', false], ['NaN', false], ['Infinity', false],
  ])('%j -> %s', (text, ok) => {
    expect(isJsonText(Buffer.from(text))).toBe(ok);
    expect(parses(Buffer.from(text))).toBe(ok);
  });

  it('refuses bytes that are not UTF-8, which JSON.parse would have turned into U+FFFD', () => {
    for (const bad of [[0x22, 0xff, 0x22], [0x22, 0xc0, 0x80, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xe2, 0x82, 0x22]]) {
      const b = Buffer.from(bad);
      expect(JSON.parse(b.toString('utf8'))).toContain('\ufffd');
      expect(isJsonText(b)).toBe(false);
    }
    expect(isJsonText(Buffer.from('"€ 😀"'))).toBe(true);
  });

  it('refuses nesting deeper than the limit without recursion', () => {
    const deep = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));
    expect(isJsonText(deep(512))).toBe(true);
    expect(isJsonText(deep(513))).toBe(false);
    expect(isJsonText(deep(100_000))).toBe(false);
    expect(isJsonText(Buffer.from('{"a":'.repeat(600) + '1' + '}'.repeat(600)), 0, undefined, 1000)).toBe(true);
  });
});
