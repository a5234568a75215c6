import { open, rename, stat } from 'node:fs/promises';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import { type AccessLine, parseAccessJson, scanAccessLines } from './access-line.js';
import { nginxMaster } from './nginx-master.js';

/** A file by identity: a rename keeps it, a new file at the same path does not. */
export interface FileId { dev: number; ino: number }

/** Where the reader is: committed to the store with the usage messages it produced. */
export interface LogPosition {
  file: FileId | null;
  offset: number;
  /** Lines skipped since metering began: not JSON, or without a valid tenant, app, time or counts. */
  garbage: number;
  /** Lines of the default server (no tenant). */
  unattributed: number;
}

export interface AccessLogOptions {
  path: string;
  pidFile: string;
  /** Past this size the agent rotates the log (rename to PATH.1, USR1 to nginx's master). */
  rotateBytes: number;
  /** The rotated file is finished once the new one exists and the old one did not grow for this long. */
  drainMs?: number;
  /** Most bytes read per call (give or take one chunk: a call stops after the chunk that reaches it), so one call stays short whatever the backlog. */
  maxBytes?: number;
}

const CHUNK = 1 << 20;
/** nginx's workers reopen within milliseconds of the master's USR1; a second of silence is plenty. */
const DRAIN_MS = 1000;
/**
 * Most bytes one step reads (give or take a chunk): about 130 ms of parsing at 0.5 µs a line, a
 * chunk at a time with the event loop free between chunks; 64 MB a second keeps up with some
 * 250,000 requests a second of 250-byte lines.
 */
const STEP_BYTES = 64 * CHUNK;
const same = (a: FileId | null, b: FileId | null) => !!a && !!b && a.dev === b.dev && a.ino === b.ino;
const idOf = (s: { dev: number; ino: number }): FileId => ({ dev: s.dev, ino: s.ino });

/**
 * Reads nginx's access log incrementally from a position, follows its rotation (the agent's own:
 * PATH → PATH.1, at most one rotated file is kept), and rotates it past a size. A partial last
 * line waits for its newline. Only whole lines move the offset.
 */
export class AccessLog {
  private drain?: { ino: number; size: number; since: number };
  private lastSignal = 0;
  /** One read buffer, reused: nothing of it outlives a call of onLine. */
  private buf?: Buffer;
  readonly rotated: string;

  constructor(private readonly o: AccessLogOptions, private readonly log: Logger) {
    this.rotated = `${o.path}.1`;
  }

  /**
   * Reads from `pos` (changed in place), handing each line to `onLine`; true when it reached the end
   * of the live file. The AccessLine is lent: onLine copies what it keeps (the next line reuses it).
   */
  async read(pos: LogPosition, now: number, onLine: (l: AccessLine) => void): Promise<boolean> {
    let budget = this.o.maxBytes ?? STEP_BYTES;
    // Each pass reads, switches file or resets the offset; a file that keeps changing under us waits for the next call.
    for (let pass = 0; pass < 64; pass++) {
      const cur = await stat(this.o.path).then(idOf, () => null);
      if (!pos.file) {
        if (!cur) return true;
        pos.file = cur;
        pos.offset = 0;
      }
      const live = same(cur, pos.file);
      const from = live ? this.o.path : await stat(this.rotated).then((s) => (same(idOf(s), pos.file) ? this.rotated : null), () => null);
      if (!from) {
        // Neither name holds it (rotated twice while the agent was away, or removed): start on what is there.
        this.log.warn('metering lost its access log file; reading the current one from its start', { file: this.o.path });
        pos.file = cur;
        pos.offset = 0;
        if (!cur) return true;
        continue;
      }
      this.buf ??= Buffer.allocUnsafe(CHUNK);
      // Always a whole chunk: the budget only decides whether to read another. A read cut short by
      // what is left of the budget would end inside a line and take its start for a "long line".
      const r = await readChunk(from, pos.file, pos.offset, this.buf);
      if (!r) continue; // replaced between stat and open: look again
      if (r.size < pos.offset) {
        this.log.warn('access log is shorter than the metering offset (truncated?); reading it from its start', { file: from });
        pos.offset = 0;
        continue;
      }
      const count = (l: AccessLine | 'unattributed' | 'garbage') => {
        if (l === 'garbage') pos.garbage++;
        else if (l === 'unattributed') pos.unattributed++;
        else onLine(l);
      };
      if (r.long !== undefined) count(parseAccessJson(r.long));
      else scanAccessLines(this.buf, r.consumed, count);
      pos.offset += r.consumed;
      budget -= r.consumed;
      if (r.consumed > 0 && pos.offset < r.size) {
        if (budget <= 0) return false;
        continue;
      }
      if (live) return true;
      // At the end of the rotated file: finished once nginx writes to the new one and the old stays still.
      if (!cur) {
        await this.reopen(now);
        return false;
      }
      if (!this.drain || this.drain.ino !== pos.file.ino || this.drain.size !== r.size) this.drain = { ino: pos.file.ino, size: r.size, since: now };
      if (now - this.drain.since < (this.o.drainMs ?? DRAIN_MS)) return false;
      if (pos.offset < r.size) pos.garbage++; // a last line nginx never finished
      pos.file = cur;
      pos.offset = 0;
      this.drain = undefined;
    }
    return false;
  }

  /** When the reader is on the live file and has read past its size (caught up or not): rotates it. */
  async rotateIfDue(pos: LogPosition, now: number): Promise<boolean> {
    if (pos.offset < this.o.rotateBytes || !pos.file) return false;
    const cur = await stat(this.o.path).then(idOf, () => null);
    if (!same(cur, pos.file)) return false;
    // Replaces the previous PATH.1, which the reader finished before it switched to this file.
    await rename(this.o.path, this.rotated);
    this.log.info('access log rotated', { file: this.o.path, bytes: pos.offset });
    await this.reopen(now, true);
    return true;
  }

  /** USR1 to nginx's master: reopen the logs. Repeated (rate-limited) while the new file does not appear. */
  private async reopen(now: number, force = false): Promise<void> {
    if (!force && now - this.lastSignal < (this.o.drainMs ?? DRAIN_MS)) return;
    this.lastSignal = now;
    const pid = await nginxMaster(this.o.pidFile);
    if (!pid) return; // not running: it opens a fresh log when it starts
    try {
      process.kill(pid, 'SIGUSR1');
    } catch (err) {
      this.log.warn('cannot signal nginx to reopen its logs', { pid, error: errorMessage(err) });
    }
  }
}

/**
 * Reads from `offset` of the file at `path`, if it still is `id`, into `buf` (as much as fits):
 * `consumed` bytes of whole lines there (0 if no newline yet); undefined if it is not that file.
 * `long`: a "line" longer than the whole buffer (not nginx's), consumed as one line, of which its
 * start stands.
 */
async function readChunk(path: string, id: FileId, offset: number, buf: Buffer): Promise<{ consumed: number; size: number; long?: string } | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const s = await fh.stat();
    if (!same(idOf(s), id)) return undefined;
    if (s.size <= offset) return { consumed: 0, size: s.size };
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, s.size - offset), offset);
    const end = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    // A "line" longer than a whole chunk is not nginx's: skip it as one garbage line.
    if (end < 0 && bytesRead === buf.length) return { consumed: bytesRead, size: s.size, long: buf.toString('latin1', 0, 64) };
    if (end < 0) return { consumed: 0, size: s.size };
    return { consumed: end + 1, size: s.size };
  } finally {
    await fh.close();
  }
}
