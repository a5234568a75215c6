import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogSync } from '../../src/lib/agent/store/log-sync.js';

/**
 * LogSync finds the log LevelDB started since the last sync by listing the spool directory: in
 * place while the directory is small, on the thread pool once it is large (a big backlog). In
 * both, a log that appears is synced in the same call, and an older one is let go.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-logsync-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const log = (n: number) => writeFile(join(dir, `${String(n).padStart(6, '0')}.log`), 'x');

describe('LogSync', () => {
  for (const tables of [3, 500]) {
    it(`a new log is synced in the call after it appears (${tables} tables beside the logs)`, async () => {
      for (let i = 0; i < tables; i++) await writeFile(join(dir, `${String(100 + i).padStart(6, '0')}.ldb`), '');
      await writeFile(join(dir, 'CURRENT'), 'MANIFEST-000002\n');
      await log(5);
      const s = new LogSync(dir);
      try {
        await s.sync(); // first listing: 5 opened and synced
        expect(s.syncs).toBe(1);
        await s.sync(); // 5 again, nothing new
        expect(s.syncs).toBe(2);
        await log(1000);
        await s.sync(); // 5 (known) and 1000 (appeared)
        expect(s.syncs).toBe(4);
        await unlink(join(dir, '000005.log')); // LevelDB removes a log once its memtable is a table
        await s.sync(); // only 1000 now
        expect(s.syncs).toBe(5);
        await log(1001);
        await log(1002); // two at once (a fast writer): both synced
        await s.sync();
        expect(s.syncs).toBe(8);
      } finally {
        await s.close();
      }
    });
  }

  it('an fdatasync that fails while a large directory is listed on the thread pool fails the sync (and is no unhandled rejection)', async () => {
    for (let i = 0; i < 500; i++) await writeFile(join(dir, `${String(100 + i).padStart(6, '0')}.ldb`), '');
    await log(5);
    const s = new LogSync(dir);
    await s.sync();
    const fh = (s as unknown as { files: Map<number, { datasync: () => Promise<void> }> }).files.get(5)!;
    fh.datasync = () => Promise.reject(Object.assign(new Error('EIO injected'), { code: 'EIO' }));
    await expect(s.sync()).rejects.toThrow('EIO injected');
    await s.close();
  });

  it('a listing that fails is an error of the sync, not a sync that seems to have covered everything', async () => {
    await log(5);
    const s = new LogSync(dir);
    await s.sync();
    await rm(dir, { recursive: true, force: true });
    await expect(s.sync()).rejects.toThrow(/ENOENT/);
    await s.close();
  });
});
