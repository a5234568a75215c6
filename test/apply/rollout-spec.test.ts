import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acquireLock, makeHolder } from '../../src/lib/release/lock.js';
import { LocalTransport } from '../../src/lib/transport/local.js';
import { cli, json } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { killNginx, writeApps, writeTestFleet } from './helpers.js';

/** The fleet's spec.rollout is the default of the rollout flags; a flag wins over it. */
const ADDR = '127.0.2.6';
/** Local mode's port base: c1 and c2 on the two free ports from here. */
let PORTS: LocalPortBlock;
let dir: string;
let fleet: string;
let root: string;
const local = () => ['--fleet', fleet, '--local', root, ...PORTS.flags, '--local-address', ADDR];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-rollout-'));
  PORTS = await localPortBlock(['c1', 'c2'], ADDR);
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: ['c1', 'c2'], apps: [{ name: 'web', domain: 'www.acme.test', nodes: ['c1', 'c2'], html: 'v1\n' }], fleetExtra: '  rollout: { canary: 1, maxFailures: 0 }\n' });
  // The canary c1 is held by someone else: it fails as locked.
  await acquireLock(new LocalTransport('c1', join(root, 'c1')), join(root, 'c1'), { ...makeHolder('edgectl apply'), holder: 'alice@ops-box' });
});

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("spec.rollout from fleet.yaml: the canary's failure stops the rollout; --canary 0 overrides it", { timeout: 120_000 }, async () => {
  const r = await cli(['apply', ...local(), '--yes', '--json']);
  expect(r.code).toBe(1);
  const by = (rep: any, n: string) => rep.nodes.find((x: any) => x.node === n);
  expect(by(json(r), 'c1').outcome).toBe('locked');
  expect(by(json(r), 'c2')).toMatchObject({ outcome: 'skipped', cause: expect.stringContaining('--max-failures 0') });
  // Without the canary batch both start together: c2 is applied although c1 fails.
  const again = await cli(['apply', ...local(), '--yes', '--json', '--canary', '0']);
  expect(again.code).toBe(1);
  expect(by(json(again), 'c1').outcome).toBe('locked');
  expect(by(json(again), 'c2').outcome).toBe('applied');
});

it('drift --fix is rolled out like apply: spec.rollout by default, a flag wins over it', { timeout: 120_000 }, async () => {
  // Both nodes drift (a new page; c1, still locked, has no release at all).
  await writeApps(fleet, [{ name: 'web', domain: 'www.acme.test', nodes: ['c1', 'c2'], html: 'v2\n' }]);
  const by = (rep: any, n: string) => rep.fix.nodes.find((x: any) => x.node === n);
  const r = await cli(['drift', ...local(), '--fix', '--yes', '--json']);
  expect(r.code).toBe(1);
  expect(by(json(r), 'c1').outcome).toBe('locked');
  expect(by(json(r), 'c2')).toMatchObject({ outcome: 'skipped', cause: expect.stringContaining('--max-failures 0') });
  const again = await cli(['drift', ...local(), '--fix', '--yes', '--json', '--canary', '0']);
  expect(again.code).toBe(1);
  expect(by(json(again), 'c1').outcome).toBe('locked');
  expect(by(json(again), 'c2').outcome).toBe('applied');
});
