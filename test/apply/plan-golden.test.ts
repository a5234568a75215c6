import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { releaseName } from '../../src/lib/bundle/manifest.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { localModel } from '../../src/lib/nodes/local-mode.js';
import { renderFleet, writeBundles } from '../../src/lib/render/index.js';
import { cli } from '../helpers/cli.js';
import { REPO } from '../helpers/paths.js';
import { UPDATE_GOLDEN } from '../render/golden.js';
import { TEST_VERSION, copyExample, tempDir } from '../render/helpers.js';

/**
 * `edgectl plan` text for fleet.example, as an operator reads it (built CLI, NO_COLOR=1),
 * against local node directories: an empty one (every node 'create') and one where bj-edge-01
 * runs an older release. `npm run build` first.
 */
const GOLDEN = path.join(REPO, 'test/golden/plan');
const OLD_NODE = 'bj-edge-01';

/**
 * What differs from run to run: the temp directory (node roots are under it, so it is in the
 * configs and therefore in every digest and release id). Each distinct hex id becomes <idN>,
 * padded to its own width so the table stays aligned and equal ids stay equal.
 */
function normalise(text: string, tmp: string): string {
  const ids = new Map<string, string>();
  return text.replaceAll(tmp, '<tmp>').replace(/\b[0-9a-f]{12,64}\b/g, (hex) => {
    if (!ids.has(hex.slice(0, 12))) ids.set(hex.slice(0, 12), `<id${ids.size + 1}>`);
    return ids.get(hex.slice(0, 12))!.padEnd(hex.length, '.');
  });
}

describe('plan text goldens', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let fleet: string;
  const local = (name: string) => path.join(tmp.dir, name);

  beforeAll(async () => {
    tmp = await tempDir('plan');
    fleet = await copyExample(tmp.dir);
    await mkdir(local('empty'));
    // An older release on bj-edge-01, rendered as plan renders for --local (its root and port
    // there), and laid out as apply leaves it: releases/<name>/ with current pointing at it.
    const old = path.join(tmp.dir, 'old-fleet');
    await cp(fleet, old, { recursive: true });
    const acme = path.join(old, 'apps/acme.yaml');
    // (A domain, not an upstream: local mode's stand-in answers for every upstream, nodes/local-mode.ts.)
    await writeFile(acme, (await readFile(acme, 'utf8')).replace('domains: [www.acme.example, acme.example]', 'domains: [www.acme.example]'));
    const globex = path.join(old, 'apps/globex.yaml');
    await writeFile(globex, (await readFile(globex, 'utf8')).replace('[/v1/orders, /v1/stock]', '[/v1/orders]'));
    const loaded = await loadFleet(old);
    const model = localModel(loaded.model, { root: local('old'), portBase: 18080, address: '127.0.0.1' });
    const [bundle] = await renderFleet({ ...loaded, model }, { edgectlVersion: TEST_VERSION, nodes: [OLD_NODE] });
    await writeBundles([bundle], path.join(tmp.dir, 'old-render'));
    const node = path.join(local('old'), OLD_NODE);
    await mkdir(path.join(node, 'releases'), { recursive: true });
    await rename(path.join(tmp.dir, 'old-render', OLD_NODE), path.join(node, 'releases', releaseName(bundle.manifest.digest)));
    await symlink(`releases/${releaseName(bundle.manifest.digest)}`, path.join(node, 'current'));
  });
  afterAll(() => tmp.cleanup());

  it.each([
    ['plan-empty.txt', 'empty', []],
    ['plan-old-release.txt', 'old', []],
    ['plan-diff.txt', 'old', ['--diff', '--node', OLD_NODE]],
  ] as const)('%s: plan --local <%s> %s', async (file, dir, extra) => {
    const r = await cli(['plan', '--fleet', fleet, '--local', local(dir), ...extra], { env: { NO_COLOR: '1' } });
    expect(r.code, r.stderr).toBe(0);
    // execa drops the last newline; the files keep one.
    const text = `${normalise(r.stdout, tmp.dir)}\n`;
    if (UPDATE_GOLDEN) await mkdir(GOLDEN, { recursive: true }).then(() => writeFile(path.join(GOLDEN, file), text));
    expect(text).toBe(await readFile(path.join(GOLDEN, file), 'utf8'));
  });
});
