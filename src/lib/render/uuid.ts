import { createHash } from 'node:crypto';

/** edgectl's UUIDv5 namespace (itself a fixed random UUID): ids derived from names never churn. */
const NAMESPACE = Buffer.from('7f1c2b8e4d3a4f6b9e0a5c1d2e3f4a5b', 'hex');

/** RFC 4122 name-based UUID, version 5 (SHA-1). */
export function uuidv5(name: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
