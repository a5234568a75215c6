import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLE = path.join(REPO, 'fleet.example');
export const TEST_VERSION = '0.0.0-test';

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `edgectl-render-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** fleet.example copied outside git: its bundles do not change with every commit of this repo. */
export async function copyExample(into: string): Promise<string> {
  const dir = path.join(into, 'fleet');
  await cp(EXAMPLE, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.edgectl`) });
  return dir;
}
