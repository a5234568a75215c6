/**
 * Key layout of the spool (one LevelDB per agent). Bytes, so ordering is exact:
 *   m <tenant> 0 <topic> 0 <seq u64be>  message (FIFO per queue: seq is global and only grows)
 *   a ...                               metadata and counters, rewritten in the same batch as the data
 *   w <window> <u64be index>            dedupe window eviction order  -> entry key
 *   x <window> <entry key>              dedupe window entry            -> stored value
 * Tenant and topic names are validated plain names (no NUL), so the prefix is unambiguous.
 */
export const META_EPOCH = Buffer.from('a:epoch');
export const META_SEQ = Buffer.from('a:seq');
export const META_QUEUE = 'a:q:';
export const META_WINDOW = 'a:w:';

// Seqs stay below 2^53; two 32-bit halves avoid BigInt on the hot path.
function writeU64(b: Buffer, n: number, offset: number): void {
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, n, 0);
  return b;
}

export function readU64(b: Buffer, offset = 0): number {
  return b.readUInt32BE(offset) * 0x1_0000_0000 + b.readUInt32BE(offset + 4);
}

export function queueName(tenant: string, topic: string): string {
  return `${tenant}\u0000${topic}`;
}

export function splitQueue(q: string): { tenant: string; topic: string } {
  const i = q.indexOf('\u0000');
  return { tenant: q.slice(0, i), topic: q.slice(i + 1) };
}

export function queuePrefix(q: string): Buffer {
  return Buffer.from(`m${q}\u0000`, 'latin1');
}

/** First key after every message of the queue (prefix with the terminator bumped). */
export function queueEnd(q: string): Buffer {
  return Buffer.from(`m${q}\u0001`, 'latin1');
}

export function messageKey(prefix: Buffer, seq: number): Buffer {
  const k = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(k, 0);
  writeU64(k, seq, prefix.length);
  return k;
}

export function seqOfKey(key: Buffer): number {
  return readU64(key, key.length - 8);
}

export function queueMetaKey(q: string): Buffer {
  return Buffer.from(META_QUEUE + q, 'latin1');
}

export function windowMetaKey(name: string): Buffer {
  return Buffer.from(META_WINDOW + name, 'latin1');
}

export function windowOrderKey(name: string, index: number): Buffer {
  return Buffer.concat([Buffer.from(`w${name}\u0000`, 'latin1'), u64(index)]);
}

export function windowEntryKey(name: string, entry: string): Buffer {
  return Buffer.from(`x${name}\u0000${entry}`, 'latin1');
}
