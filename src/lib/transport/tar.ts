/**
 * A ustar archive of in-memory files, written the way every tar reads it (GNU tar, busybox,
 * bsdtar): 512-byte headers, data padded to 512, two zero blocks at the end, and a pax header
 * for a path too long for ustar's name and prefix fields. It is how files cross to a node in
 * one stream over a plain exec channel: `tar -x` on the node, no SFTP subsystem needed.
 * Regular files, and where a caller needs them directories (an entry of its own: its mode, set
 * by GNU tar when its last entry is read) and symlinks (a relative target, created as it is).
 * Directories not given an entry are created by tar as it extracts.
 */
export interface TarFile {
  /** Relative path, "/"-separated, no "..", no leading "/" (callers pass validated paths). */
  path: string;
  /** A file's bytes (none: empty); a directory or a symlink has none. */
  data?: Buffer;
  mode?: number;
  /** "file" (the default), "dir" or "symlink" (to `link`). */
  kind?: 'file' | 'dir' | 'symlink';
  /** A symlink's target: relative, no "..", at most 100 bytes (ustar's linkname). */
  link?: string;
}

const TYPE = { file: '0', dir: '5', symlink: '2' } as const;

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);

export function tarArchive(files: TarFile[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (!f.path || f.path.startsWith('/') || f.path.split('/').some((s) => s === '..' || s === '' || s === '.')) throw new Error(`tar: unsafe path ${JSON.stringify(f.path)}`);
    const kind = f.kind ?? 'file';
    const data = f.data ?? EMPTY;
    if (kind !== 'file' && data.length > 0) throw new Error(`tar: ${kind} ${JSON.stringify(f.path)} with data`);
    if (kind === 'symlink' && !(f.link && !f.link.startsWith('/') && !f.link.split('/').includes('..') && Buffer.byteLength(f.link) <= 100)) throw new Error(`tar: unsafe symlink target ${JSON.stringify(f.link)}`);
    const name = kind === 'dir' ? `${f.path}/` : f.path;
    const split = splitUstar(name);
    if (!split) {
      const rec = paxRecord('path', name);
      parts.push(header({ name: 'PaxHeader', size: rec.length, mode: 0o644, mtime, type: 'x' }), pad(rec));
    }
    const mode = f.mode ?? (kind === 'file' ? 0o644 : kind === 'dir' ? 0o755 : 0o777);
    parts.push(header({ name: split?.name ?? name.slice(-100), prefix: split?.prefix, size: data.length, mode, mtime, type: TYPE[kind], link: f.link }), pad(data));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** ustar's name (100 bytes) and prefix (155 bytes), split at a "/", or undefined when the path does not fit. */
function splitUstar(path: string): { name: string; prefix?: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { name: path };
  for (let i = path.indexOf('/'); i > 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  return undefined;
}

/** "<len> key=value\n", where len counts itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

function header(h: { name: string; prefix?: string; size: number; mode: number; mtime: number; type: string; link?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.fill(' ', 148, 156);
  b.write(h.type, 156, 1, 'ascii');
  if (h.link) b.write(h.link, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'ascii');
  b.write('root', 265, 32, 'ascii');
  b.write('root', 297, 32, 'ascii');
  if (h.prefix) b.write(h.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'ascii');
  return b;
}

function octal(b: Buffer, at: number, len: number, n: number): void {
  if (n >= 8 ** (len - 1)) throw new Error(`tar: ${n} does not fit in ${len - 1} octal digits`);
  b.write(n.toString(8).padStart(len - 1, '0') + '\u0000', at, len, 'ascii');
}

function pad(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}
