import { EdgectlError } from '../errors.js';
import { appPayloadDir, type AppResource } from '../fleet/model.js';
import type { FleetSource } from '../fleet/source.js';
import { isSafeBundlePath } from '../bundle/manifest.js';
import { appId } from './context.js';

export interface PayloadFile {
  path: string;
  data: Buffer;
}

/**
 * Reads each app's payload once: the files under its directory in the fleet (same working tree
 * or git revision as the fleet), as `apps/<tenant>.<app>/<relative path>`. Bundles share the
 * buffers. A file whose name is not a safe bundle path is an error, not silently skipped.
 */
export async function loadPayloads(source: FleetSource, apps: AppResource[]): Promise<Map<string, PayloadFile[]>> {
  const out = new Map<string, PayloadFile[]>();
  await Promise.all(apps.map(async (app) => {
    const dir = appPayloadDir(app)?.dir;
    if (!dir) return;
    const prefix = dir.replace(/\/+$/, '') + '/';
    const files: PayloadFile[] = [];
    for (const rel of await source.listExtra(dir)) {
      if (!rel.startsWith(prefix)) continue;
      const inner = rel.slice(prefix.length);
      const path = `apps/${appId(app)}/${inner}`;
      if (!isSafeBundlePath(path)) {
        throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: payload file "${rel}" has a name that cannot go into a bundle (letters, digits, ".", "_", "-" only)`, { hint: 'Rename the file, or move it out of the app\'s directory: every part of its path must be letters, digits, ".", "_" and "-", not starting with "." or "-".' });
      }
      const data = await source.readExtra(rel);
      if (data === undefined) throw new EdgectlError('EDGECTL_RENDER', `app ${app.name}: cannot read payload file ${rel}`, { hint: 'Check that the file still exists in the fleet and is readable, then render again.' });
      files.push({ path, data });
    }
    files.sort((a, b) => (a.path < b.path ? -1 : 1));
    out.set(app.name, files);
  }));
  return out;
}
