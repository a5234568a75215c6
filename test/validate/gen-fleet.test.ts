import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateFleet } from '../helpers/gen-fleet.js';
import { cleanTemps, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  return new Map(await Promise.all(files.map(async (e) => [path.relative(dir, path.join(e.parentPath, e.name)), await readFile(path.join(e.parentPath, e.name), 'utf8')] as [string, string])));
}

describe('generateFleet (synthetic fleets for benchmarks)', { timeout: 120_000 }, () => {
  it('writes a valid fleet with every app type, in both layouts, deterministically', async () => {
    for (const split of ['each', 7] as const) {
      const a = await tempDir('gen');
      const g = await generateFleet(a, { edges: 120, apps: 25, tenants: 5, split });
      const r = await validateDir(a);
      expect(r.errors, JSON.stringify(r.problems.slice(0, 5))).toBe(0);
      expect(r.counts).toMatchObject({ nodes: 1 + g.relayNames.length + 120, apps: 25, tenants: 5 });
      expect(new Set(r.model!.apps.map((x) => x.spec.type))).toEqual(new Set(['proxy', 'static', 'api', 'fastcgi']));
      expect(r.model!.nodes.filter((n) => n.spec.tunnel === 'reverse').length).toBe(2);
      const b = await tempDir('gen');
      await generateFleet(b, { edges: 120, apps: 25, tenants: 5, split });
      expect(await snapshot(b)).toEqual(await snapshot(a));
    }
  });

  it('honours the relay count', async () => {
    const d = await tempDir('gen');
    const g = await generateFleet(d, { edges: 40, apps: 4, tenants: 2, relays: 3 });
    expect(g.relayNames).toHaveLength(3);
    expect((await validateDir(d)).errors).toBe(0);
  });
});
