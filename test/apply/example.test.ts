import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { cli, json } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { get, killNginx } from './helpers.js';
import { tlsGet } from '../tls/helpers.js';

/** README's first command: the example fleet applied on this machine, no SSH, every node's nginx real. */
const ADDR = '127.0.2.3';
/** The example's ten nodes' ports (local mode: each node's slot is the hash of its name); bj-edge-01's nginx. */
let PORTS: LocalPortBlock;
let WWW: number;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-example-'));
  PORTS = await localPortBlock((await loadFleet(EXAMPLE)).model.nodes.map((n) => n.name), ADDR);
  WWW = PORTS.of('bj-edge-01').http;
  await chmod(dir, 0o755);
});
afterAll(async () => {
  if (dir) await killNginx(join(dir, 'nodes'));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('apply --local on fleet.example', { timeout: 180_000 }, () => {
  it('applies every node, serves the placed apps, then finds nothing to do', async () => {
    const flags = ['--fleet', EXAMPLE, '--local', join(dir, 'nodes'), ...PORTS.flags, '--local-address', ADDR];
    const r = await cli(['apply', ...flags, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = json(r);
    expect(rep.summary.applied).toBe(10);
    // Kong is not installed here: said in the notes, not hidden, and not a failure.
    expect(rep.nodes.find((n: any) => n.node === 'bj-edge-01').notes.join(' ')).toMatch(/Kong is not installed/);
    // bj-edge-01's nginx, where local mode put it.
    // acme-www is served over HTTPS with the example's demo CA certificate; plain HTTP redirects.
    expect((await get(ADDR, WWW, 'www.acme.example')).status).toBe(301);
    const www = await tlsGet(ADDR, PORTS.of('bj-edge-01').https, 'www.acme.example', await readFile(join(EXAMPLE, 'tls', 'demo-ca.pem')));
    expect(www.authorized).toBe(true);
    expect(www.status).toBe(200);
    expect(www.body).toContain('ACME Logistics');
    expect((await get(ADDR, WWW, 'www.acme.example', '/healthz')).body).toBe('ok acme/acme-www\n');
    // A proxy app answers from this machine: its upstream (a documentation address) is never contacted.
    const track = await get(ADDR, WWW, 'track.acme.example');
    expect(track).toEqual({ status: 200, body: 'edgectl local demo: this answer stands in for the upstream of track.acme.example\n' });
    const conf = await readFile(join(dir, 'nodes', 'bj-edge-01', 'current', 'nginx', 'conf.d', 'acme.acme-track.conf'), 'utf8');
    expect(conf).toMatch(/^\s*server unix:\/.*\/run\/demo-upstream\.sock;$/m);
    expect(conf).not.toContain('198.51.100');
    const plan = await cli(['plan', ...flags, '--detailed-exitcode']);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('10 node(s): 0 to change, 10 unchanged, 0 unreachable');
  });
});
