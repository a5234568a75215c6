import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitUpgrade } from '../../src/lib/bootstrap/detached.js';
import { EdgectlError } from '../../src/lib/errors.js';
import type { Connector } from '../../src/lib/transport/connect.js';
import { LocalTransport } from '../../src/lib/transport/local.js';

/**
 * The wait for a reverse node's detached gate (src/lib/bootstrap/detached.ts): RESULT_SCRIPT run
 * for real (sh, over the local transport) against outcome files as the gate's unit writes them.
 * The end to end (a real tunnel going down under the upgrade) is test/bootstrap/pack-nat.test.ts;
 * here the connector alone is a stand-in, so that failed connections can be counted.
 */
let root: string;
const ID = '0123456789abcdef';
const dirOf = (id = ID) => join(root, 'run', `upgrade-${id}`);

/** A connector over the local transport whose first `failures` opens fail as a tunnel that is not back yet. */
function connector(failures = 0, error?: () => Error) {
  const c = { opens: 0, closes: 0 };
  const make = (): Connector => ({
    async open(node: string) {
      c.opens++;
      if (c.opens <= failures) throw error?.() ?? new EdgectlError('EDGECTL_TRANSPORT', `${node} (reverse tunnel at 127.0.0.1:2204 on r1): tunnel down: nothing listens`);
      return new LocalTransport(node, root);
    },
    async close() {
      c.closes++;
    },
    keepOpen() {},
    stats: () => ({ handshakes: 0, byHost: {}, open: 0 }),
    hostKeys: () => [],
    route: () => ['local'],
  });
  return { c, make };
}
const opts = (make: () => Connector, extra: { waitMs?: number } = {}) => ({ node: 'n1', root, connector: make, pollMs: 50, firstTryMs: 0, ...extra });

async function outcome(code: number | undefined, out: string, err: string, id = ID) {
  await mkdir(dirOf(id), { recursive: true });
  await writeFile(join(dirOf(id), 'out'), out);
  await writeFile(join(dirOf(id), 'err'), err);
  if (code !== undefined) await writeFile(join(dirOf(id), 'code'), `${code}\n`);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ec-detached-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the outcome of a detached agent upgrade', () => {
  it('is read once the gate wrote its code, over a new connection after each failed one, and removed from the node', async () => {
    await outcome(undefined, '', '');
    const { c, make } = connector(3);
    // The gate finishes while edgectl polls.
    setTimeout(() => void outcome(5, 'result rolled-back\n', 'agent x: the agent exited\n'), 400);
    const w = await awaitUpgrade(opts(make, { waitMs: 10_000 }), ID);
    await w.close();
    expect(w).toMatchObject({ code: 5 });
    expect(w.stdout).toContain('result rolled-back');
    expect(w.stdout).toContain('state done');
    expect(w.stderr).toContain('the agent exited');
    expect(c.opens).toBeGreaterThanOrEqual(4);
    expect(existsSync(dirOf())).toBe(false);
  });

  it('a gate that never finishes is "did not report its outcome" within the bound, with where to look', async () => {
    await outcome(undefined, '', '');
    const { make } = connector();
    const t0 = Date.now();
    const e = await awaitUpgrade(opts(make, { waitMs: 1000 }), ID).catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e).toBeInstanceOf(EdgectlError);
    expect(e).toMatchObject({ code: 'EDGECTL_TRANSPORT', message: expect.stringContaining(`agent upgrade ${ID} did not report its outcome within 1 s (last: the gate still runs on the node)`) });
    expect((e as EdgectlError).hint).toContain(`${root}/run/upgrade-${ID}/`);
    await rm(dirOf(), { recursive: true });
  });

  it('a tunnel that never comes back times out the same way, naming the last connection error', async () => {
    const { c, make } = connector(Infinity);
    const e = await awaitUpgrade(opts(make, { waitMs: 800 }), ID).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EDGECTL_TRANSPORT', message: expect.stringContaining('(last: n1 (reverse tunnel at 127.0.0.1:2204 on r1): tunnel down') });
    expect(c.closes).toBe(c.opens);
  });

  it('an error that is not a connection error is not retried (a changed host key)', async () => {
    const { c, make } = connector(Infinity, () => new EdgectlError('EDGECTL_HOSTKEY_CHANGED', 'n1: HOST KEY CHANGED'));
    await expect(awaitUpgrade(opts(make, { waitMs: 5000 }), ID)).rejects.toMatchObject({ code: 'EDGECTL_HOSTKEY_CHANGED' });
    expect(c.opens).toBe(1);
  });

  it('a node with no record of the upgrade, or a malformed code, is an error at once', async () => {
    const { make } = connector();
    await expect(awaitUpgrade(opts(make, { waitMs: 5000 }), 'fedcba9876543210')).rejects.toMatchObject({ code: 'EDGECTL_BOOTSTRAP', message: expect.stringContaining('has no outcome of agent upgrade fedcba9876543210') });
    await mkdir(dirOf(), { recursive: true });
    await writeFile(join(dirOf(), 'code'), 'x; reboot\n');
    await expect(awaitUpgrade(opts(make, { waitMs: 5000 }), ID)).rejects.toMatchObject({ code: 'EDGECTL_BOOTSTRAP', message: expect.stringContaining('malformed exit code') });
  });
});
