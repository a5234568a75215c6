import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {}

/**
 * Reads the whole body, refusing more than `limit` bytes (by Content-Length up front, or as it
 * streams). `exact`: the caller checked Content-Length already; the body is copied into one
 * buffer of that size as it arrives, so a large body is held once, never as chunks plus a copy.
 */
export function readBody(req: IncomingMessage, limit: number, exact?: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge(`body of ${declared} bytes exceeds ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const into = exact === undefined ? undefined : Buffer.allocUnsafe(exact);
    let n = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      if (n + c.length > (into ? into.length : limit)) {
        done = true;
        req.pause();
        reject(new BodyTooLarge(`body exceeds ${limit} bytes`));
        return;
      }
      if (into) c.copy(into, n);
      else chunks.push(c);
      n += c.length;
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      if (into) resolve(n === into.length ? into : into.subarray(0, n));
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n));
    });
    req.on('error', (e) => { if (!done) { done = true; reject(e); } });
    req.on('close', () => { if (!done) { done = true; reject(new Error('client went away')); } });
  });
}
