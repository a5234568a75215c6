import { open, type FileHandle } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Deliverer } from '../forward/deliverer.js';
import type { Batch } from '../store/spool.js';
import type { SpoolMessage } from '../store/record.js';
import { sinkLines } from './format.js';

export interface FileSinkOptions {
  /** The forwarder's batch limits: how far back the file's tail is read for ids already written. */
  batchMessages?: number;
  batchBytes?: number;
}

/** How every sink line starts (format.ts: the id is the first field, and never holds a quote). */
const ID_PREFIX = Buffer.from('{"id":"');

/**
 * JSON lines appended to a file, fdatasync'ed before the batch counts as delivered. Exactly once:
 * a batch comes again only when it was written but not acknowledged in the spool (the hub died
 * between the two, or the spool's delete failed), and then it is the last one written. So the
 * sink remembers the ids of the last batches it wrote; after a restart (or a failed write) it
 * reads them from the file's tail, dropping a torn last line first, and skips those messages.
 */
export class FileSink implements Deliverer {
  readonly name: string;
  private fh?: FileHandle;
  /** Ids of the last two batches written (the current one is still unacknowledged in the spool). */
  private recent = new Set<string>();
  private previous = new Set<string>();
  private readonly tailBytes: number;

  constructor(private file: string, opts: FileSinkOptions = {}) {
    this.name = `file:${file}`;
    // A sink line takes at most ~4/3 of its body (base64) plus ~200 bytes: two batches, with room.
    this.tailBytes = Math.max(1 << 20, 3 * (opts.batchBytes ?? 4 << 20) + 512 * (opts.batchMessages ?? 1000));
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    const msgs = batch.messages();
    if (!this.fh) await this.openAndReadTail();
    const fresh: SpoolMessage[] = [];
    const ids = new Set<string>();
    for (const m of msgs) {
      ids.add(m.id);
      if (!this.recent.has(m.id) && !this.previous.has(m.id)) fresh.push(m);
    }
    try {
      if (fresh.length > 0) {
        await this.fh!.write(sinkLines(fresh));
        await this.fh!.datasync();
      }
    } catch (err) {
      // Some of it may be in the file: read the tail again before the retry.
      await this.close().catch(() => {});
      throw err;
    }
    this.previous = this.recent;
    this.recent = ids;
  }

  /** Opens for appending; the ids at the tail (up to two batches' worth) join `recent`. A torn last line is cut off. */
  private async openAndReadTail(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const fh = await open(this.file, 'a+', 0o640);
    try {
      const size = (await fh.stat()).size;
      const from = Math.max(0, size - this.tailBytes);
      const buf = Buffer.allocUnsafe(size - from);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, from + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const tail = buf.subarray(0, got);
      const end = tail.lastIndexOf(0x0a) + 1;
      if (from + end < size && (end > 0 || from === 0)) {
        // A line without its newline: that write never completed its fdatasync, so its batch was
        // not acknowledged and comes again. Cut it, so the file stays one record per line.
        await fh.truncate(from + end);
        await fh.datasync();
      }
      const ids = new Set<string>();
      // Line by line in the bytes (no string of the whole region). The first line of the region may
      // be cut at its start (when the region starts mid-file): skipped.
      for (let at = from === 0 ? 0 : tail.indexOf(0x0a) + 1; at < end;) {
        const nl = tail.indexOf(0x0a, at);
        if (tail.subarray(at, at + ID_PREFIX.length).equals(ID_PREFIX)) {
          const q = tail.indexOf(0x22, at + ID_PREFIX.length);
          if (q !== -1 && q < nl) ids.add(tail.toString('utf8', at + ID_PREFIX.length, q));
        }
        at = nl + 1;
      }
      this.previous = new Set();
      this.recent = ids;
      this.fh = fh;
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
