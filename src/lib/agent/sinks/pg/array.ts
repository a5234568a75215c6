/**
 * A PostgreSQL array literal ('{"a","b",NULL}') for one parameter cast to an array type in SQL
 * (`${literal}::text[]`). Written here rather than left to the client: postgres.js serialises a JS
 * array only once it has fetched the server's array types, which the first query of a new
 * connection has not. Every element is quoted, so only backslash and double quote need escaping.
 */
export function arrayLiteral(xs: readonly (string | number | null)[]): string {
  let out = '{';
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (i > 0) out += ',';
    out += x === null ? 'NULL' : `"${String(x).replace(/[\\"]/g, '\\$&')}"`;
  }
  return out + '}';
}

/** Bytes as elements of a bytea[] literal: hex format. */
export function byteaLiteral(bodies: readonly Buffer[]): string {
  let out = '{';
  for (let i = 0; i < bodies.length; i++) out += `${i > 0 ? ',' : ''}"\\\\x${bodies[i].toString('hex')}"`;
  return out + '}';
}
