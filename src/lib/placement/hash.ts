/**
 * Fast, well-mixed hashes for rendezvous placement. Placement scores every (app, node) pair, so
 * at fleet scale (2,000 apps x 10,000 nodes) a cryptographic hash per pair would dominate the
 * render; instead each name is hashed once (two 32-bit lanes) and pairs are combined with
 * murmur3's finaliser, which passes avalanche tests and is stable across platforms and versions.
 */
export interface NameHash {
  h1: number;
  h2: number;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two independent 32-bit hashes of a string (cyrb53-style lanes). */
export function hashName(s: string): NameHash {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return { h1: h1 >>> 0, h2: h2 >>> 0 };
}

const TWO_POW_21 = 2 ** 21;
const TWO_POW_53 = 2 ** 53;

/**
 * A uniform number strictly inside (0, 1) for the pair (app, node), from the raw lanes of their
 * name hashes (the scheduler's hot loop keeps them in typed arrays).
 */
export function pairUnitRaw(a1: number, a2: number, n1: number, n2: number): number {
  const hi = fmix32((a1 ^ Math.imul(n2, 0x9e3779b1)) >>> 0);
  const lo = fmix32((a2 + Math.imul(n1 ^ hi, 0x7feb352d)) >>> 0);
  // 53 bits: 32 from hi, 21 from lo; +0.5 keeps the value away from 0 and 1.
  return (hi * TWO_POW_21 + (lo >>> 11) + 0.5) / TWO_POW_53;
}

/** Weighted rendezvous score: -weight / ln(u). Higher wins; weight-proportional in expectation. */
export function rendezvousScore(weight: number, u: number): number {
  return -weight / Math.log(u);
}
