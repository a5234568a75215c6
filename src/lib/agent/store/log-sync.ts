import { readdirSync } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

const LOG = /^(\d+)\.log$/;
/** Entries up to which the directory is listed synchronously: a handful of microseconds. */
const SMALL_DIR = 64;

/**
 * fdatasync of LevelDB's write-ahead log, from our own file handles. The group commit writes its
 * batches without `sync` (each one is in the log file, in the kernel, once its write returns) and
 * syncs here: fdatasync flushes the file, whichever descriptor asks, so one call covers every
 * batch whose write had returned before it began. LevelDB's own synced write would hold LevelDB's
 * writer queue for the length of the fdatasync; this does not, so the next batch is written while
 * the disk syncs the last ones.
 *
 * LevelDB starts a new log when its memtable is full and never writes the older one again: every
 * log present from the last one synced on is synced (an older log already removed was turned into
 * a table, which LevelDB syncs itself), and the directory is synced when a log appears, so the new
 * file's name is on disk too.
 */
export class LogSync {
  private files = new Map<number, FileHandle>();
  /** Logs below this number are synced after their last write. */
  private floor = 0;
  /** fdatasync calls made (for /status: acknowledgements per sync). */
  syncs = 0;
  /** The last listing had at most SMALL_DIR entries (the first is made on the thread pool). */
  private smallDir = false;

  constructor(private readonly dir: string) {}

  async sync(): Promise<void> {
    // The log known to be newest is synced while the directory is listed (in parallel: the
    // listing only matters when LevelDB has started a new log since, which is rare).
    const known = this.files.size > 0 ? Math.max(...this.files.keys()) : undefined;
    const synced = known === undefined ? undefined : this.files.get(known)!.datasync();
    // Handled from the start (a sync that fails while the listing runs is not an unhandled
    // rejection); the await below still throws its error.
    synced?.catch(() => {});
    let names: string[];
    try {
      // A small directory is listed in place (7 us here, against 43 us of CPU for the thread
      // pool's round trip, once per sync); a large one (a big backlog: thousands of tables, ms
      // to list) on the thread pool, not blocking the event loop.
      names = this.smallDir ? readdirSync(this.dir) : await readdir(this.dir);
    } catch (err) {
      await synced?.catch(() => {});
      throw err;
    }
    this.smallDir = names.length <= SMALL_DIR;
    await synced;
    if (known !== undefined) this.syncs++;
    const logs: [number, string][] = [];
    for (const name of names) {
      const m = LOG.exec(name);
      if (m && Number(m[1]) >= this.floor) logs.push([Number(m[1]), name]);
    }
    logs.sort((a, b) => a[0] - b[0]);
    let appeared = false;
    for (const [n, name] of logs) {
      if (n === known) continue;
      let fh = this.files.get(n);
      if (!fh) {
        try {
          fh = await open(path.join(this.dir, name), 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        this.files.set(n, fh);
        appeared = true;
      }
      await fh.datasync();
      this.syncs++;
    }
    if (appeared) await this.syncDir();
    const newest = logs.length > 0 ? logs[logs.length - 1][0] : undefined;
    if (newest === undefined) return;
    this.floor = newest;
    for (const [n, fh] of this.files) {
      if (n >= newest) continue;
      this.files.delete(n);
      await fh.close().catch(() => {});
    }
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    this.floor = 0;
    await Promise.all(all.map((fh) => fh.close().catch(() => {})));
  }
}
