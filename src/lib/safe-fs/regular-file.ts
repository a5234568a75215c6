import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/**
 * Reading a file that someone else named (a fleet, a flag, a config) must neither hang nor eat
 * the machine: `/dev/zero` reads forever, a FIFO blocks the open until a writer comes, and
 * opening some devices has side effects (a watchdog, a tape). So the path is stat'ed first
 * and only a regular file is opened, with O_NONBLOCK (a FIFO swapped in after the stat cannot
 * block) and, where links must not be followed, O_NOFOLLOW; the open file is fstat'ed again
 * and must be the very file that was checked, at most `maxBytes` long.
 */
export class UnsafeFileError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path} ${reason}`);
    this.name = 'UnsafeFileError';
  }
}

/** "a FIFO", "a directory", ...: for messages. */
export function describeType(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface ReadRegularOptions {
  /** Refuse larger files (checked before reading, and again while reading). */
  maxBytes?: number;
  /** Refuse a symbolic link as the last component (components above are the caller's to check). */
  noFollow?: boolean;
}

/** Reads a regular file; throws UnsafeFileError for anything else, errno errors (ENOENT...) as they come. */
export function readRegularFile(path: string, o: ReadRegularOptions = {}): Buffer {
  const max = o.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const before = o.noFollow ? lstatSync(path) : statSync(path);
  if (before.isSymbolicLink()) throw new UnsafeFileError(path, 'is a symbolic link');
  if (!before.isFile()) throw new UnsafeFileError(path, `is ${describeType(before)}, not a regular file`);
  if (before.size > max) throw new UnsafeFileError(path, `is ${before.size} bytes, more than the ${max} allowed`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (o.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError(path, 'is a symbolic link');
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.ino !== before.ino || st.dev !== before.dev) throw new UnsafeFileError(path, 'changed while it was being opened');
    // One byte more than allowed: a file that grew since fstat is caught too.
    const buf = readFd(fd, Math.min(st.size, max) + 1);
    if (buf.length > max) throw new UnsafeFileError(path, `is more than the ${max} bytes allowed`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Reads at most `cap` bytes from the start of an open file (fewer at its end). */
export function readFd(fd: number, cap: number): Buffer {
  const buf = Buffer.allocUnsafe(cap);
  let got = 0;
  while (got < cap) {
    const n = readSync(fd, buf, got, cap - got, got);
    if (n === 0) break;
    got += n;
  }
  return got === cap ? buf : buf.subarray(0, got);
}

/**
 * Appends to a regular file, creating it if missing. With `noFollow`, a symbolic link as the
 * last component is refused (O_NOFOLLOW), so a file a fleet turned into a link cannot make an
 * append land in another file; O_NONBLOCK keeps a FIFO from blocking the open.
 */
export async function appendRegularFile(path: string, data: string, o: { noFollow?: boolean; mode?: number } = {}): Promise<void> {
  const { open } = await import('node:fs/promises');
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK | (o.noFollow ? constants.O_NOFOLLOW : 0);
  const fh = await open(path, flags, o.mode ?? 0o644).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ELOOP' ? new UnsafeFileError(path, 'is a symbolic link') : e;
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UnsafeFileError(path, `is ${describeType(st)}, not a regular file`);
    await fh.appendFile(data);
  } finally {
    await fh.close();
  }
}
