import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeChunk, encodeChunkSpans } from '../../src/lib/agent/store/record.js';
import { mulberry32 } from '../helpers/prng.js';

// encodeChunkSpans writes an NDJSON request's lines as one chunk record, moving the lines in
// place behind their lengths when the gaps allow it: it must give the bytes encodeChunk gives for
// the same lines as Buffers, whatever the gaps, line lengths and range of lines.

describe('chunk record from spans', () => {
  it('is byte for byte the chunk of the same lines, for LF, CRLF and wider gaps, any range', () => {
    const r = mulberry32(18);
    for (let round = 0; round < 3000; round++) {
      const n = 1 + Math.floor(r() * 40);
      const parts: Buffer[] = [];
      const spans = new Uint32Array(2 * n);
      let at = Math.floor(r() * 3);
      const lead = Buffer.alloc(at, 0x20);
      parts.push(lead);
      for (let i = 0; i < n; i++) {
        const len = Math.floor(r() * (r() < 0.1 ? 300 : 12));
        const line = Buffer.from(Array.from({ length: len }, () => 0x21 + Math.floor(r() * 90)));
        // Gaps of 1 (LF) and 2 (CRLF) mostly; now and then 0 or up to 7, where the copy per line is used.
        const gap = r() < 0.9 ? 1 + Math.floor(r() * 2) : Math.floor(r() * 8);
        spans[2 * i] = at;
        spans[2 * i + 1] = at + len;
        parts.push(line, Buffer.alloc(gap, gap === 1 ? 0x0a : 0x0d));
        at += len + gap;
      }
      const body = Buffer.concat(parts);
      const from = Math.floor(r() * n);
      const to = from + 1 + Math.floor(r() * (n - from));
      const lines = [];
      for (let i = from; i < to; i++) lines.push(body.subarray(spans[2 * i], spans[2 * i + 1]));
      const got = encodeChunkSpans('node:e:', 'application/json', 1_700_000_000_000, body, spans, from, to);
      const want = encodeChunk('node:e:', 'application/json', 1_700_000_000_000, lines);
      if (!got.equals(want)) expect({ round, got: got.toString('hex') }).toEqual({ round, got: want.toString('hex') });
    }
  });

  it('reads back as the lines it was given', () => {
    const body = Buffer.from('{"a":1}\r\n[2]\n"x"\n');
    const spans = new Uint32Array([0, 7, 9, 12, 13, 16]);
    const msgs = decodeRecords('acme', 'events', 5, encodeChunkSpans('n:e:', 'application/json', 1, body, spans, 0, 3));
    expect(msgs.map((m) => [m.id, m.body.toString()])).toEqual([['n:e:5', '{"a":1}'], ['n:e:6', '[2]'], ['n:e:7', '"x"']]);
  });
});
