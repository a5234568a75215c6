import { chmod, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, bundlesOf } from '../../src/lib/apply/index.js';
import type { FleetModel } from '../../src/lib/fleet/model.js';
import { silentLogger } from '../../src/lib/logger.js';
import { planFleet, type FleetDeps } from '../../src/lib/plan/index.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { createConnector } from '../../src/lib/transport/connect.js';
import { freePortRange } from '../helpers/ports.js';
import { killNginx } from '../apply/helpers.js';
import { makeCa, makeIdentity, writeTlsFleet } from './helpers.js';

/** The step-by-step activation (stage.ts, scripts-stage.ts) gives secrets 0600 too, and plan then sees no change. */
const ADDR = '127.0.2.19';
let dir: string;
let fleet: string;
let root: string;
let deps: FleetDeps;
const local = { root: '', portBase: 0, portRange: 1, address: ADDR };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tls-steps-'));
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  root = local.root = join(dir, 'nodes');
  await mkdir(join(dir, 'scratch'));
  const ca = makeCa(join(dir, 'scratch'));
  const id = await makeIdentity(join(dir, 'scratch', 'id.txt'));
  await writeTlsFleet(fleet, { ca, recipients: [id.recipient], apps: [{ name: 'www', domains: ['www.acme.example'] }] });
  local.portBase = await freePortRange(4, ADDR);
  deps = {
    logger: silentLogger,
    now: () => new Date(),
    edgectlVersion: 'test',
    secrets: secretOpener({ flag: id.file }),
    connect: (model: FleetModel) => createConnector({ model, fleetRoot: fleet, localRoot: root }),
  };
});
afterAll(async () => {
  if (dir) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('secrets on the step-by-step path', { timeout: 120_000 }, () => {
  it('stages the key 0600 and its release stays clean', async () => {
    const planned = await planFleet(deps, { fleet, local, concurrency: 1, diff: false });
    try {
      const r = await applyPlan(planned.plan, bundlesOf(planned), { connector: planned.connector, logger: silentLogger, now: deps.now, stepByStep: true }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 1 });
      expect(r.nodes[0].outcome, JSON.stringify(r.nodes[0])).toBe('applied');
      expect(r.nodes[0].path).toBe('steps');
    } finally {
      await planned.connector.close();
    }
    const key = join(root, 'edge-1', 'current', 'nginx', 'tls', 'acme.www', 'key.pem');
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, 'edge-1', 'current', 'nginx', 'tls', 'acme.www', 'chain.pem'))).mode & 0o777).toBe(0o644);
    expect((await readFile(key, 'utf8'))).toContain('PRIVATE KEY');
    const again = await planFleet(deps, { fleet, local, concurrency: 1, diff: false });
    await again.connector.close();
    expect(again.plan.nodes[0].action).toBe('none');
  });
});
