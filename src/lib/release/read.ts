import type { Manifest } from '../bundle/manifest.js';
import type { Transport } from '../transport/types.js';

/** Reads some of a release's files from the node (their bytes, as they are there now). */
export async function readRelease(t: Transport, dir: string, m: Manifest, want: (path: string) => boolean): Promise<{ path: string; data: Buffer }[]> {
  const paths = Object.keys(m.files).filter(want);
  const out = await Promise.all(paths.map(async (p) => ({ path: p, data: await t.readFile(`${dir}/${p}`) })));
  return out.filter((f): f is { path: string; data: Buffer } => f.data !== undefined);
}
