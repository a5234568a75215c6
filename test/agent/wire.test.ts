import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, WireError } from '../../src/lib/agent/forward/wire.js';
import type { IncomingRun } from '../../src/lib/agent/store/spool.js';

// The hop-to-hop format is input from another machine: every field of a run is checked.
const bodies = (...xs: string[]) => Buffer.concat(xs.flatMap((x) => { const l = Buffer.alloc(4); l.writeUInt32BE(Buffer.byteLength(x)); return [l, Buffer.from(x)]; }));
const run = (over: Partial<IncomingRun> = {}): IncomingRun => ({ idPrefix: 'edge1:ab12cd34:', first: 10, count: 2, tenant: 'acme', topic: 'events', contentType: 'application/json', ts: 1, bodies: bodies('{"a":1}', '{"b":2}'), ...over });

function withHeader(header: unknown, rest: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const l = Buffer.alloc(4);
  l.writeUInt32BE(h.length);
  return Buffer.concat([l, h, rest]);
}

describe('forward wire format', () => {
  it('round-trips messages and runs, bodies untouched', () => {
    const msg = { id: 'edge1:ab12cd34:3', tenant: 'acme', topic: 'events', contentType: 'application/octet-stream', ts: 5, body: Buffer.from([0, 255, 10]) };
    const [m, r] = decodeBatch(encodeBatch([msg, run()]));
    expect(m).toEqual(msg);
    expect(r).toMatchObject({ idPrefix: 'edge1:ab12cd34:', first: 10, count: 2 });
    expect((r as IncomingRun).bodies.equals(run().bodies)).toBe(true);
  });

  it.each<[string, Partial<IncomingRun>]>([
    ['a prefix with a path in it', { idPrefix: '../x:' }],
    ['an empty prefix', { idPrefix: '' }],
    ['a count of 0', { count: 0 }],
    ['a count past 100,000', { count: 100_001 }],
    ['a fractional first id', { first: 1.5 }],
    ['a negative first id', { first: -1 }],
    ['a first id past 2^53', { first: 2 ** 53 }],
    ['more messages than its bodies hold', { count: 3 }],
    ['fewer messages than its bodies hold', { count: 1 }],
    ['a body length past its bytes', { bodies: Buffer.from([0, 0, 0, 9, 65]), count: 1 }],
    ['a bad tenant', { tenant: '../etc' }],
  ])('refuses a run with %s', (_what, over) => {
    expect(() => decodeBatch(encodeBatch([run(over)]))).toThrow(WireError);
  });

  it('refuses run rows in a version 1 batch, rows of other lengths, and trailing bytes', () => {
    const b = run().bodies;
    expect(() => decodeBatch(withHeader({ v: 1, m: [['e:1:', 1, 2, 'acme', 'events', 'a/b', 1, b.length]] }, b))).toThrow(/malformed metadata/);
    expect(() => decodeBatch(withHeader({ v: 2, m: [['e:1:', 1, 2, 'acme', 'events', 'a/b', 1]] }, b))).toThrow(/malformed metadata/);
    expect(() => decodeBatch(withHeader({ v: 2, m: [['e:1:', 1, 2, 'acme', 'events', 'a/b', 1, b.length]] }, Buffer.concat([b, Buffer.from('x')])))).toThrow(/trailing bytes/);
    expect(() => decodeBatch(withHeader({ v: 3, m: [] }, Buffer.alloc(0)))).toThrow(/unknown version/);
    expect(decodeBatch(withHeader({ v: 2, m: [['e:1:', 1, 2, 'acme', 'events', 'a/b', 1, b.length]] }, b))).toHaveLength(1);
  });
});
