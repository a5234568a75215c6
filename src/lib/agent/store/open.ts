import { cp, mkdir, rename, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ClassicLevel } from 'classic-level';
import type { Logger } from '../../logger.js';
import { errorChain, errorMessage } from '../../errors.js';

export type Db = ClassicLevel<Buffer, Buffer>;

export interface StoreIncident {
  kind: 'repaired' | 'quarantined';
  at: string;
  reason: string;
  /** Where the corrupt original was kept (a copy before repair, or the store moved aside). Never deleted. */
  movedTo?: string;
}

export interface OpenedStore {
  db: Db;
  incidents: StoreIncident[];
  /** True when LevelDB's repair ran: counters must be rebuilt from the keys that survived. */
  repaired: boolean;
}

/** Corruption is salvaged or quarantined; anything else (ENOSPC, EIO, a lock) is retried, never moved aside. */
export function isCorruption(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: string }).code;
    if (code === 'LEVEL_CORRUPTION') return true;
    if (/corrupt/i.test(errorMessage(e))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

async function tryOpen(dir: string): Promise<Db> {
  const { ClassicLevel } = await import('classic-level');
  // A small block cache: memory must stay bounded with a million messages waiting. A 16 MB
  // memtable, not 4: every batch writes the counters (a:...) beside the messages (m...), so each
  // memtable flushed to a table spans every table of the level below and its compaction rewrites
  // them all; a memtable four times larger does that a quarter as often (NDJSON intake +21%, peak
  // RSS +7 MB, bench/httpq.mjs figures in docs/httpq.md). Tables stay 2 MB (see Known limits).
  const db = new ClassicLevel<Buffer, Buffer>(dir, {
    keyEncoding: 'buffer', valueEncoding: 'buffer', cacheSize: 4 << 20, writeBufferSize: 16 << 20, maxOpenFiles: 200,
  });
  await db.open();
  return db;
}

/**
 * Opens the spool. A store that will not open because it is corrupt is repaired by LevelDB
 * (which keeps every record it can read); if it still will not open it is renamed into
 * <data>/quarantine/ and a fresh store is started, so the agent never refuses to start forever.
 * Other failures (disk full, I/O error, another process holding the lock) are thrown.
 */
export async function openStore(dataDir: string, log: Logger, now: () => Date = () => new Date()): Promise<OpenedStore> {
  const dir = path.join(dataDir, 'spool');
  await mkdir(dataDir, { recursive: true });
  const incidents: StoreIncident[] = [];
  try {
    return { db: await tryOpen(dir), incidents, repaired: false };
  } catch (err) {
    if (!isCorruption(err)) throw err;
    log.error('spool store is corrupt; running LevelDB repair', { dir, error: errorChain(err) });
  }
  const { ClassicLevel } = await import('classic-level');
  const qdir = path.join(dataDir, 'quarantine');
  const stamp = () => now().toISOString().replace(/[:.]/g, '-');
  // Repair rewrites the store and may discard what it cannot parse: keep the original bytes first.
  const backup = path.join(qdir, `spool-${stamp()}-before-repair`);
  await mkdir(qdir, { recursive: true });
  await cp(dir, backup, { recursive: true });
  try {
    await ClassicLevel.repair(dir);
    const db = await tryOpen(dir);
    incidents.push({ kind: 'repaired', at: now().toISOString(), reason: 'store was corrupt; LevelDB repair salvaged what it could read', movedTo: backup });
    log.error('spool store repaired; the corrupt original is kept in quarantine', { dir, backup });
    return { db, incidents, repaired: true };
  } catch (err) {
    if (!isCorruption(err) && !/repair/i.test(errorMessage(err))) {
      // Not a corruption any more (e.g. disk full during repair): do not move the data aside.
      throw err;
    }
    const movedTo = path.join(qdir, `spool-${stamp()}-unrepairable`);
    await rename(dir, movedTo);
    incidents.push({ kind: 'quarantined', at: now().toISOString(), reason: `store could not be opened after repair: ${errorChain(err)}`, movedTo });
    log.error('spool store quarantined; starting with a fresh store', { dir, movedTo, error: errorChain(err) });
    return { db: await tryOpen(dir), incidents, repaired: false };
  }
}

/** Stores moved aside earlier (they stay until an operator deals with them): reported in /status. */
export async function listQuarantine(dataDir: string): Promise<string[]> {
  try {
    return (await readdir(path.join(dataDir, 'quarantine'))).sort().map((n) => path.join(dataDir, 'quarantine', n));
  } catch {
    return [];
  }
}
