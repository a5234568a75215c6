import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateFleet } from '../helpers/gen-fleet.js';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

// A large fleet (1,600 edges) with errors early and late in file order: the CLI's --json is
// exactly the in-process core's, and the text report quotes the offending lines.
describe('validate on a large fleet', { timeout: 300_000 }, () => {
  it('gives the same problems through the CLI as the in-process core, with errors early and late', async () => {
    const dir = await tempDir('par');
    await generateFleet(dir, { edges: 1600, apps: 40, tenants: 5 });
    // apps/ sorts first, nodes/edge-1599 late.
    const early = path.join(dir, 'apps/app-0001.yaml');
    await writeFile(early, (await readFile(early, 'utf8')).replace('replicas: 2', 'replica: 2'));
    const late = path.join(dir, 'nodes/edge-1599.yaml');
    await writeFile(late, (await readFile(late, 'utf8')).replace(/address: .*/, 'address: "a;b"'));
    const two = cliSync(['validate', '--fleet', dir, '--json']);
    expect(two.code).toBe(1);
    const problems = JSON.parse(two.stdout).problems;
    expect(problems).toEqual([
      expect.objectContaining({ rule: 'unknown-field', file: 'apps/app-0001.yaml', line: 10, path: 'spec.placement.replica', hint: 'did you mean `replicas`?' }),
      expect.objectContaining({ rule: 'invalid-value', file: 'nodes/edge-1599.yaml', line: 8, path: 'spec.address' }),
    ]);
    const inProcess = await validateDir(dir);
    expect(inProcess.problems.map((p) => ({ ...p, hint: p.hint ?? null }))).toEqual(problems);
    // The text report quotes the offending lines.
    expect(cliSync(['validate', '--fleet', dir]).stdout).toContain('placement: { selector: { region: region-01 }, replica: 2, spreadBy: site }');
  });
});
