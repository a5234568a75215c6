import { constants } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { EdgectlError, errorMessage } from '../errors.js';

/**
 * The admin API's bearer token: 32 random bytes as hex, in a file only the agent's user can read
 * (`edgectl spool` reads it on the node through SSH, as that same user). Created when missing,
 * never through a symlink and never half-written; a file that anyone else could have written or
 * read is refused rather than trusted.
 */
export const ADMIN_TOKEN = /^[0-9a-f]{64}$/;
const MAX_BYTES = 1024;

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;
const bad = (file: string, why: string) => new EdgectlError('EDGECTL_AGENT_CONFIG', `admin token file ${file} ${why}`, { hint: 'Remove it and restart the agent: a new one is made (readable by the agent\'s user only).' });

/** The sha256 of the admin token in `file`, which is created first if it does not exist. */
export async function loadAdminToken(file: string): Promise<Buffer> {
  let token = await readToken(file);
  if (token === undefined) {
    await createToken(file);
    token = await readToken(file);
    if (token === undefined) throw bad(file, 'vanished right after it was created');
  }
  return createHash('sha256').update(token).digest();
}

/** The token, or undefined when there is no file. Not a regular file, a link, someone else's, or readable by others: refused. */
export async function readToken(file: string): Promise<string | undefined> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO put there must not hang the agent's start (it is then refused as not a file).
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    if (codeOf(err) === 'ELOOP') throw bad(file, 'is a symbolic link');
    throw bad(file, `cannot be opened: ${errorMessage(err)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw bad(file, 'is not a regular file');
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw bad(file, `belongs to uid ${st.uid}, not to the agent's user (uid ${process.getuid()})`);
    if ((st.mode & 0o077) !== 0) throw bad(file, `has mode ${(st.mode & 0o777).toString(8)}: it must be readable by its owner only (600)`);
    if (st.size > MAX_BYTES) throw bad(file, `is ${st.size} bytes, not a token`);
    const buf = Buffer.alloc(MAX_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.toString('utf8', 0, bytesRead).trim();
    if (!ADMIN_TOKEN.test(text)) throw bad(file, 'does not hold a token (64 hex digits)');
    return text;
  } finally {
    await fh.close();
  }
}

/** Writes a new token beside `file` (0600, synced) and links it into place; a token someone made meanwhile is kept. */
async function createToken(file: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.admin-token.${process.pid}.${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(`${randomBytes(32).toString('hex')}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link(2) never replaces what is there, and never follows a symlink at `file`.
    await link(tmp, file);
  } catch (err) {
    if (codeOf(err) !== 'EEXIST') throw bad(file, `cannot be created: ${errorMessage(err)}`);
  } finally {
    await unlink(tmp);
  }
  const d = await open(dir, constants.O_RDONLY);
  try { await d.sync(); } finally { await d.close(); }
}
