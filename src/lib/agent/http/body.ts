import type { IncomingMessage } from 'node:http';

export class BodyTooLarge extends Error {}

/** Reads the whole body, refusing more than `limit` bytes (by Content-Length up front, or as it streams). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge(`body of ${declared} bytes exceeds ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > limit) {
        done = true;
        req.pause();
        reject(new BodyTooLarge(`body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!done) { done = true; resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n)); } });
    req.on('error', (e) => { if (!done) { done = true; reject(e); } });
    req.on('close', () => { if (!done) { done = true; reject(new Error('client went away')); } });
  });
}
