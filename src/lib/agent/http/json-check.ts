/**
 * Is `b[start, end)` exactly one JSON text (RFC 8259): one value with optional whitespace around
 * it, strings in valid UTF-8? Checked byte by byte without building the value: NDJSON intake only
 * has to know each line is JSON, and JSON.parse (decode to a string, build objects, collect them)
 * was most of its cost. Stricter than JSON.parse on two points, both on purpose: bytes that are
 * not UTF-8 are refused (JSON.parse would have seen U+FFFD after decoding), and so is nesting
 * deeper than `maxDepth` (a consumer's recursive parser must not be handed a stack bomb).
 */
export function isJsonText(b: Uint8Array, start = 0, end = b.length, maxDepth = 512): boolean {
  // Open containers: 1 = object, 2 = array. Shared: the check is synchronous and never re-entered.
  if (stack.length < maxDepth) stack = new Uint8Array(maxDepth);
  let depth = 0;
  let i = skipWs(b, start, end);
  for (;;) {
    // A value starts at i.
    if (i >= end) return false;
    const c = b[i];
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth === maxDepth) return false;
      i = skipWs(b, i + 1, end);
      if (c === 0x7b) {
        if (b[i] === 0x7d /* } */) { i++; }
        else {
          stack[depth++] = 1;
          i = member(b, i, end);
          if (i < 0) return false;
          continue;
        }
      } else if (b[i] === 0x5d /* ] */) { i++; }
      else { stack[depth++] = 2; continue; }
    } else if (c === 0x22 /* " */) {
      i = string(b, i, end);
    } else if (c === 0x74 /* t */) {
      i = literal(b, i, end, TRUE);
    } else if (c === 0x66 /* f */) {
      i = literal(b, i, end, FALSE);
    } else if (c === 0x6e /* n */) {
      i = literal(b, i, end, NULL);
    } else {
      i = number(b, i, end);
    }
    if (i < 0) return false;
    // After a value: close containers, or a comma and the next element or member.
    for (;;) {
      i = skipWs(b, i, end);
      if (depth === 0) return i === end;
      const top = stack[depth - 1];
      const d = b[i];
      if (d === 0x2c /* , */) {
        i = skipWs(b, i + 1, end);
        if (top === 1) { i = member(b, i, end); if (i < 0) return false; }
        break;
      }
      if ((top === 1 && d === 0x7d) || (top === 2 && d === 0x5d)) { depth--; i++; continue; }
      return false;
    }
  }
}

let stack = new Uint8Array(512);
const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `"key" ws : ws` at i; returns where the member's value starts, or -1. */
function member(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== 0x22) return -1;
  i = string(b, i, end);
  if (i < 0) return -1;
  i = skipWs(b, i, end);
  if (b[i] !== 0x3a /* : */) return -1;
  return skipWs(b, i + 1, end);
}

function literal(b: Uint8Array, i: number, end: number, word: number[]): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
function number(b: Uint8Array, i: number, end: number): number {
  if (b[i] === 0x2d /* - */) i++;
  if (i >= end) return -1;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) { while (i < end && isDigit(b[i])) i++; }
  else return -1;
  if (i < end && b[i] === 0x2e /* . */) {
    i++;
    if (i >= end || !isDigit(b[i])) return -1;
    while (i < end && isDigit(b[i])) i++;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || !isDigit(b[i])) return -1;
    while (i < end && isDigit(b[i])) i++;
  }
  return i;
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);

/** The string whose opening quote is at i; returns the index after its closing quote, or -1. */
function string(b: Uint8Array, i: number, end: number): number {
  i++;
  while (i < end) {
    const c = b[i];
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c /* \ */) {
      const e = b[i + 1];
      if (e === 0x75 /* u */) {
        if (i + 6 > end || !isHex(b[i + 2]) || !isHex(b[i + 3]) || !isHex(b[i + 4]) || !isHex(b[i + 5])) return -1;
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else {
        return -1;
      }
    } else if (c < 0x80) {
      i++;
    } else {
      i = utf8(b, i, end);
      if (i < 0) return -1;
    }
  }
  return -1;
}

/** One UTF-8 sequence of 2-4 bytes at i (no overlong forms, no surrogates, at most U+10FFFF). */
function utf8(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  const cont = (k: number) => i + k < end && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? i + 2 : -1;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return -1;
    const c1 = b[i + 1];
    if (c === 0xe0 && c1 < 0xa0) return -1; // overlong
    if (c === 0xed && c1 >= 0xa0) return -1; // UTF-16 surrogate
    return i + 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return -1;
    const c1 = b[i + 1];
    if (c === 0xf0 && c1 < 0x90) return -1; // overlong
    if (c === 0xf4 && c1 >= 0x90) return -1; // above U+10FFFF
    return i + 4;
  }
  return -1;
}
