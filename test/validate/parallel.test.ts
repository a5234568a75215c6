import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateFleet } from '../helpers/gen-fleet.js';
import { cleanTemps, cli, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

// Large fleets are checked by two threads (src/lib/fleet/validate-parallel.ts, built into dist):
// the result must be exactly the single-thread one, problems in the worker's files included.
describe('validate on two threads', { timeout: 300_000 }, () => {
  it('gives the same --json as one thread and as the in-process core, with errors on both sides', async () => {
    const dir = await tempDir('par');
    await generateFleet(dir, { edges: 1600, apps: 40, tenants: 5 });
    // apps/ sorts first (the worker's share), nodes/edge-1599 late (this thread's share).
    const early = path.join(dir, 'apps/app-0001.yaml');
    await writeFile(early, (await readFile(early, 'utf8')).replace('replicas: 2', 'replica: 2'));
    const late = path.join(dir, 'nodes/edge-1599.yaml');
    await writeFile(late, (await readFile(late, 'utf8')).replace(/address: .*/, 'address: "a;b"'));
    const two = cli(['validate', '--fleet', dir, '--json']);
    const one = cli(['validate', '--fleet', dir, '--json'], { env: { EDGECTL_VALIDATE_THREADS: '1' } });
    expect(two.status).toBe(1);
    expect(one.status).toBe(1);
    expect(JSON.parse(two.stdout)).toEqual(JSON.parse(one.stdout));
    const problems = JSON.parse(two.stdout).problems;
    expect(problems).toEqual([
      expect.objectContaining({ rule: 'unknown-field', file: 'apps/app-0001.yaml', line: 10, path: 'spec.placement.replica', hint: 'did you mean `replicas`?' }),
      expect.objectContaining({ rule: 'invalid-value', file: 'nodes/edge-1599.yaml', line: 8, path: 'spec.address' }),
    ]);
    const inProcess = await validateDir(dir);
    expect(inProcess.problems.map((p) => ({ ...p, hint: p.hint ?? null }))).toEqual(problems);
    // The text report quotes lines from files the worker checked.
    expect(cli(['validate', '--fleet', dir]).stdout).toContain('placement: { selector: { region: region-01 }, replica: 2, spreadBy: site }');
  });
});
