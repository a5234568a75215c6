import { readRegularFile, UnsafeFileError } from '../../safe-fs/regular-file.js';

/** An OpenSSH private key is a few KiB; anything bigger is not one. */
const MAX_KEY_BYTES = 64 * 1024;

/**
 * The node's tunnel key, read at every connection attempt: a key put in place (or rotated) after
 * the agent started is used by the next attempt, without a restart. Only a regular file is read
 * (not a FIFO or a device that would block or never end), and it must be a key ssh2 can use.
 */
export async function loadTunnelKey(path: string): Promise<Buffer> {
  let key: Buffer;
  try {
    key = readRegularFile(path, { maxBytes: MAX_KEY_BYTES });
  } catch (e) {
    if (e instanceof UnsafeFileError) throw new Error(`tunnel key ${e.message}`);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`no tunnel key at ${path} (the node's key is created on the node; its public half goes into the fleet as spec.tunnelKey)`);
    throw new Error(`cannot read the tunnel key ${path}: ${(e as Error).message}`);
  }
  const ssh2 = await import('ssh2');
  // ssh2 is CommonJS: Node's ESM loader exposes `Client` as a named export but not `utils`.
  const utils = ssh2.utils ?? (ssh2 as unknown as { default: typeof ssh2 }).default.utils;
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`tunnel key ${path} is not a private key ssh2 can use without a passphrase: ${parsed.message}`);
  return key;
}
