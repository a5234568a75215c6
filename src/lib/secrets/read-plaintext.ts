import { readFile } from 'node:fs/promises';
import { EdgectlError } from '../errors.js';
import { MAX_SECRET_BYTES } from './age.js';

/** The plaintext of `secret set`: a file, or stdin (bounded: a secret is small). */
export async function readPlaintext(from?: string): Promise<Buffer> {
  if (from) {
    try {
      return await readFile(from);
    } catch (e) {
      throw new EdgectlError('EDGECTL_SECRET', `cannot read --from ${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (process.stdin.isTTY) process.stderr.write('reading the secret from stdin (end with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    n += (c as Buffer).length;
    if (n > MAX_SECRET_BYTES) throw new EdgectlError('EDGECTL_SECRET', `stdin holds more than ${MAX_SECRET_BYTES} bytes: not a secret edgectl keeps`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
