import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortRange } from '../helpers/ports.js';
import { cli, json } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { get, killNginx } from './helpers.js';

/** README's first command: the example fleet applied on this machine, no SSH, every node's nginx real. */
const ADDR = '127.0.2.3';
/** The first of the example's ten nodes' nginx ports (local mode: node i on BASE + i). */
let BASE: number;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-example-'));
  BASE = await freePortRange(10, ADDR);
  await chmod(dir, 0o755);
});
afterAll(async () => {
  if (dir) await killNginx(join(dir, 'nodes'));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('apply --local on fleet.example', { timeout: 180_000 }, () => {
  it('applies every node, serves the placed apps, then finds nothing to do', async () => {
    const flags = ['--fleet', EXAMPLE, '--local', join(dir, 'nodes'), '--local-port-base', String(BASE), '--local-address', ADDR];
    const r = await cli(['apply', ...flags, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = json(r);
    expect(rep.summary.applied).toBe(10);
    // Kong is not installed here: said in the notes, not hidden, and not a failure.
    expect(rep.nodes.find((n: any) => n.node === 'bj-edge-01').notes.join(' ')).toMatch(/Kong is not installed/);
    // Nodes get ports in fleet order (sorted by name): bj-edge-01 is the first.
    const www = await get(ADDR, BASE, 'www.acme.example');
    expect(www.status).toBe(200);
    expect(www.body).toContain('ACME Logistics');
    expect((await get(ADDR, BASE, 'www.acme.example', '/healthz')).body).toBe('ok acme/acme-www\n');
    const plan = await cli(['plan', ...flags, '--detailed-exitcode']);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('10 node(s): 0 to change, 10 unchanged, 0 unreachable');
  });
});
