import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { validateFleet } from '../../src/lib/fleet/validate.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tunnel-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function problems(nodeSpecs: Record<string, unknown>[]) {
  await writeFile(join(dir, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/x" }\n');
  const relay = 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: r1 }\nspec: { role: relay, address: 10.231.0.1 }\n';
  const docs = nodeSpecs.map((s, i) => `---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: e${i} }\nspec: ${JSON.stringify({ role: 'edge', address: `10.231.0.${10 + i}`, ...s })}\n`);
  await writeFile(join(dir, 'nodes.yaml'), relay + docs.join(''));
  return validateFleet(await readFleetSource(dir)).problems.filter((p) => p.rule.includes('tunnel') || p.rule.includes('reverse') || p.path?.includes('tunnelPort'));
}

it('tunnel: reverse needs spec.tunnelPort; tunnelPort needs tunnel: reverse; both together are valid', async () => {
  expect(await problems([{ via: ['r1'], tunnel: 'reverse', tunnelPort: 2204 }])).toEqual([]);
  const missing = await problems([{ via: ['r1'], tunnel: 'reverse' }]);
  expect(missing).toEqual([expect.objectContaining({ rule: 'reverse-without-port', file: 'nodes.yaml', path: 'spec.tunnel', severity: 'error' })]);
  const stray = await problems([{ tunnelPort: 2204 }]);
  expect(stray).toEqual([expect.objectContaining({ rule: 'tunnel-port-without-tunnel', path: 'spec.tunnelPort' })]);
  const bad = await problems([{ via: ['r1'], tunnel: 'reverse', tunnelPort: 70000 }]);
  expect(bad.length).toBe(1);
  expect(bad[0].message).toMatch(/port/);
});
