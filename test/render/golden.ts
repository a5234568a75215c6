import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { silentLogger } from '../../src/lib/logger.js';
import { renderToDir } from '../../src/lib/render/to-dir.js';
import { TEST_VERSION } from './helpers.js';

/** UPDATE_GOLDEN=1 rewrites the golden files instead of failing on a difference. */
export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** What `edgectl render --out` writes: the command's own core function, worker-thread writer included. */
function renderAsCli(fleet: string, out: string) {
  return renderToDir({ fleet, out, check: false, edgectlVersion: TEST_VERSION, logger: silentLogger });
}

/**
 * Renders `fleet` to `out` the way the CLI does and compares the tree with `golden` byte for
 * byte; with UPDATE_GOLDEN=1 the golden tree is rewritten by that same path first, so a
 * golden file can only ever hold what the CLI writes.
 */
export async function expectGoldenRender(fleet: string, out: string, golden: string): Promise<void> {
  await renderAsCli(fleet, out);
  if (UPDATE_GOLDEN) {
    await rm(golden, { recursive: true, force: true });
    await renderAsCli(fleet, golden);
  }
  const got = await listTree(out);
  expect(got).toEqual(await listTree(golden));
  for (const rel of got) {
    const [a, b] = await Promise.all([readFile(path.join(out, rel)), readFile(path.join(golden, rel))]);
    expect(a.equals(b), `${rel} differs from ${path.join(golden, rel)}`).toBe(true);
  }
}
