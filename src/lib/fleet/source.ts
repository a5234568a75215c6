// Where a fleet is read from: the working tree (source-dir.ts) or a git revision (source-rev.ts),
// both through git.ts. Callers import from here.
import type { FleetSource } from './source-types.js';
import { readFleetDir } from './source-dir.js';
import { readFleetRev } from './source-rev.js';

export * from './source-types.js';
export { readFleetDir, readFleetRev };
export { trackedUnder } from './git.js';

export function readFleetSource(root: string, rev?: string): Promise<FleetSource> {
  return rev ? readFleetRev(root, rev) : readFleetDir(root);
}
