import { chmod, mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { get, killNginx, writeApps, writeTestFleet, type TestApp } from './helpers.js';

/**
 * Issue 12 item 6: a rollout in batches over real nodes (nine local nodes, each its own nginx):
 * `--canary 1 --batch 25% --max-failures 1` is [e1], then 25% of the other eight, two at a time:
 * [e2 e3] [e4 e5] [e6 e7] [e8 e9]. e3 (second batch) and e5 (third) fail their health check: the
 * first failure is within the budget, the second exceeds it, and no node after that batch starts.
 */
const ADDR = '127.0.2.1';
const NODES = ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9'];
const FAILING = ['e3', 'e5'];
let PORTS: LocalPortBlock;
let dir: string;
let fleet: string;
let root: string;
const local = () => ['--fleet', fleet, '--local', root, ...PORTS.flags, '--local-address', ADDR];
const port = (n: string) => PORTS.of(n).http;
const current = async (n: string) => (await readlink(join(root, n, 'current'))).replace('releases/', '');

const web = (html: string): TestApp => ({ name: 'web', domain: 'www.acme.test', nodes: NODES, html });
// An app whose health check can never pass (its page is not there): the node's apply fails at the health step.
const broken: TestApp = { name: 'broken', domain: 'broken.acme.test', nodes: FAILING, html: 'x\n', healthCheck: { path: '/not-there', expectStatus: 200 } };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-batches-'));
  await chmod(dir, 0o755);
  PORTS = await localPortBlock(NODES, ADDR);
  fleet = join(dir, 'fleet');
  root = join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: NODES, apps: [web('<h1>v1</h1>\n')] });
  const first = await cli(['apply', ...local(), '--yes']);
  expect(first.code, first.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  if (root) await killNginx(root);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('apply --canary 1 --batch 25% --max-failures 1 (nine real nodes)', { timeout: 240_000 }, () => {
  it('applies canary and batches in order, tolerates one failure, stops after the second; exit 1', async () => {
    const v1 = Object.fromEntries(await Promise.all(NODES.map(async (n) => [n, await current(n)])));
    await writeApps(fleet, [web('<h1>v2</h1>\n'), broken]);
    const r = await cli(['apply', ...local(), '--yes', '--json', '--canary', '1', '--batch', '25%', '--max-failures', '1']);
    expect(r.code, r.stderr).toBe(1);
    const rep = json(r);
    const outcome = Object.fromEntries(rep.nodes.map((x: { node: string; outcome: string }) => [x.node, x.outcome]));
    expect(outcome).toEqual({ e1: 'applied', e2: 'applied', e3: 'rolled-back', e4: 'applied', e5: 'rolled-back', e6: 'skipped', e7: 'skipped', e8: 'skipped', e9: 'skipped' });
    expect(rep.nodes.find((x: { node: string }) => x.node === 'e3').step).toBe('health');
    expect(rep.nodes.find((x: { node: string }) => x.node === 'e6').cause).toBe('not started: failures (2) exceeded --max-failures 1');
    expect(rep.stopped).toBe('failures (2) exceeded --max-failures 1');
    expect(rep.summary).toMatchObject({ applied: 3, 'rolled-back': 2, skipped: 4, failed: 0 });

    // The order on stderr (one line per start and result off a terminal): each batch starts only
    // after the one before it has finished, the canary alone first.
    const lines = r.stderr.split('\n');
    const at = (node: string, what: string) => lines.findIndex((l) => new RegExp(`^\\S+ ${node} ${what}\\b`).test(l));
    const batchesRun = [['e1'], ['e2', 'e3'], ['e4', 'e5']];
    for (let b = 1; b < batchesRun.length; b++) {
      const lastEnd = Math.max(...batchesRun[b - 1].map((n) => at(n, '(applied|rolled-back)')));
      for (const n of batchesRun[b]) expect(at(n, 'start'), `${n} starts after batch ${b} ended`).toBeGreaterThan(lastEnd);
    }
    for (const n of ['e6', 'e7', 'e8', 'e9']) expect(at(n, 'start')).toBe(-1);

    // What each node serves now: v2 where applied; v1 where rolled back or never started.
    for (const n of NODES) {
      const page = await get(ADDR, port(n), 'www.acme.test');
      expect(page.body, n).toBe(outcome[n] === 'applied' ? '<h1>v2</h1>\n' : '<h1>v1</h1>\n');
      if (outcome[n] !== 'applied') expect(await current(n), n).toBe(v1[n]);
    }
  });
});
