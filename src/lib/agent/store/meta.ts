import type { SpoolCore } from './core.js';
import type { Op } from './window.js';

/**
 * Small state of the agent's own parts kept in the spool's LevelDB (metering's offsets), under
 * `a:m:<name>`: beside the counters (a:q:) and windows (a:w:), outside every range they scan.
 */
const META_OWN = 'a:m:';

export const ownMetaKey = (name: string) => Buffer.from(META_OWN + name, 'latin1');

export function putOwnMeta(name: string, value: Buffer): Op {
  return { type: 'put', key: ownMetaKey(name), value };
}

export async function getOwnMeta(core: SpoolCore, name: string): Promise<Buffer | undefined> {
  core.assertOpen();
  return (await core.db.get(ownMetaKey(name))) ?? undefined;
}

/** One synced write of metadata alone (nothing else to store with it). */
export function commitOwnMeta(core: SpoolCore, ops: Op[]): Promise<void> {
  core.assertOpen();
  return core.commit(ops);
}
