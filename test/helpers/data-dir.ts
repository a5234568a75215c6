import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A node's release root must lie below a data prefix (RELEASE_ROOT_PREFIXES in
 * src/lib/fleet/values.ts), so tests whose fleets name a root put it here, not in /tmp.
 * Mode 0755 all the way: nginx workers (user nobody) traverse into the roots.
 */
export const TEST_DATA_DIR = '/srv/edgectl-test';

export async function dataTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  await mkdir(TEST_DATA_DIR, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(TEST_DATA_DIR, `${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
