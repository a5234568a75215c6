import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgectlError } from '../../src/lib/errors.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet } from '../../src/lib/render/index.js';
import { cliSync } from '../helpers/cli.js';
import { TEST_VERSION, copyExample, tempDir } from './helpers.js';

/** A render error's hint says what failed: a template only when a template did. */
describe('EDGECTL_RENDER hints match the cause', { timeout: 120_000 }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('hints');
  });
  afterAll(() => tmp.cleanup());

  it('a payload file whose name cannot go into a bundle: the CLI says to rename it, not that a template failed', async () => {
    const dir = await copyExample(path.join(tmp.dir, 'payload'));
    await writeFile(path.join(dir, 'sites/acme-www/read me.html'), 'x');
    const r = cliSync(['render', '--fleet', dir, '--out', path.join(tmp.dir, 'payload-out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/payload file "sites\/acme-www\/read me.html" has a name that cannot go into a bundle .*\[EDGECTL_RENDER\]/);
    expect(r.stderr).toMatch(/hint: Rename the file/);
    expect(r.stderr).not.toMatch(/template/i);
  });

  it('a value refused by a helper of edgectl\'s own template: not a template error', async () => {
    const dir = await copyExample(path.join(tmp.dir, 'value'));
    const loaded = await loadFleet(dir);
    loaded.model.apps.find((a) => a.name === 'acme-www')!.spec.domains = ['evil.example;'];
    const e = await renderFleet(loaded, { edgectlVersion: TEST_VERSION }).then(() => undefined, (x: unknown) => x as EdgectlError);
    expect(e?.code).toBe('EDGECTL_RENDER');
    expect(e?.message).toMatch(/refusing to render domain/);
    expect(e?.hint).not.toMatch(/template/i);
  });
});
