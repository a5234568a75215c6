import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { localPorts } from '../../src/lib/nodes/local-mode.js';
import { killAll, startAgent } from '../agent/helpers.js';
import { cli, json } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { EXAMPLE } from '../helpers/paths.js';

// Issue 12 item 10: in --local mode each node has ports of its own, stable per node, shown by
// plan; `spool --node N` checks that the agent answering there is N.

const names = (n: number, p = 'edge') => Array.from({ length: n }, (_, i) => `${p}-${String(i + 1).padStart(2, '0')}`);
const flat = (m: Map<string, { http: number; agent: number; admin: number }>) => [...m.values()].flatMap((p) => [p.http, p.agent, p.admin]);

describe('localPorts: a node keeps its ports', () => {
  it('when nodes are added or removed, whatever their names sort as', () => {
    const before = localPorts(names(20), { portBase: 18080 });
    const more = localPorts(['aaa-first', ...names(20), 'mmm', 'zzz-last'], { portBase: 18080 });
    const fewer = localPorts(names(20).filter((_, i) => i % 3 !== 0), { portBase: 18080 });
    for (const [n, p] of before) expect(more.get(n), n).toEqual(p);
    for (const [n, p] of fewer) expect(before.get(n), n).toEqual(p);
  });

  it('whatever the order of the fleet, and every port is distinct, colliding slots included', () => {
    const list = names(40);
    const a = localPorts(list, { portBase: 30000, portRange: 48 });
    const b = localPorts([...list].reverse(), { portBase: 30000, portRange: 48 });
    expect(b).toEqual(a);
    // 40 nodes in 48 slots collide for certain: still one slot each.
    expect(new Set(flat(a)).size).toBe(120);
    for (const p of a.values()) {
      expect(p.http).toBeGreaterThanOrEqual(30000);
      expect(p.http).toBeLessThan(30048);
      expect(p.agent).toBe(30048 + 2 * (p.http - 30000));
      expect(p.admin).toBe(p.agent + 1);
    }
    const full = localPorts(list, { portBase: 30000, portRange: 40 });
    expect(new Set(flat(full)).size).toBe(120);
  });

  it('more nodes than slots, or ports past 65535, is a usage error', () => {
    expect(() => localPorts(names(5), { portBase: 18080, portRange: 4 })).toThrow(/4 port slots .* for 5 nodes/);
    expect(() => localPorts(names(2), { portBase: 65000 })).toThrow(/beyond 65535/);
  });

  it('the README\'s and docs/apply.md\'s port for bj-edge-01 (www.acme.example) is the one local mode gives it', async () => {
    const { model } = await loadFleet(EXAMPLE);
    expect(localPorts(model.nodes.map((n) => n.name), { portBase: 18080 }).get('bj-edge-01')!.http).toBe(18341);
  });
});

describe('--local through the CLI', { timeout: 120_000 }, () => {
  const NODES = ['edge-a', 'edge-b'];
  let dir: string;
  let fleet: string;
  let PORTS: LocalPortBlock;
  const local = () => ['--fleet', fleet, '--local', path.join(dir, 'nodes'), ...PORTS.flags];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ec-local-ports-'));
    fleet = path.join(dir, 'fleet');
    PORTS = await localPortBlock(NODES);
    await mkdir(fleet);
    await writeFile(path.join(fleet, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: lp }\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n');
    await writeFile(path.join(fleet, 'nodes.yaml'), NODES.map((n, i) => `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${n} }\nspec: { role: edge, address: 192.0.2.${i + 1} }\n`).join('---\n'));
  });
  afterAll(async () => {
    await killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plan shows each node\'s ports, and the rendered agent.json of each node listens on its own', async () => {
    const r = await cli(['plan', ...local()]);
    expect(r.code, r.stderr).toBe(0);
    for (const n of NODES) {
      const p = PORTS.of(n);
      expect(r.stdout).toMatch(new RegExp(`^\\s*${n}\\s.*\\s${p.http} / ${p.https} / ${p.agent}, ${p.admin}\\s*$`, 'm'));
    }
    const j = json(await cli(['plan', ...local(), '--json']));
    expect(j.local.ports).toEqual(Object.fromEntries(NODES.map((n) => [n, PORTS.of(n)])));
    // What apply would ship: the bundle plan renders (local mode) holds the agent's own address.
    const saved = path.join(dir, 'plan.json');
    expect((await cli(['plan', ...local(), '--out', saved])).code).toBe(0);
    const plan = JSON.parse(await readFile(saved, 'utf8'));
    for (const n of plan.nodes) {
      const agentJson = JSON.parse(Buffer.from(plan.blobs[n.manifest.files['agent/agent.json'].sha256], 'base64').toString());
      expect(agentJson.listen, n.node).toBe(`127.0.0.1:${PORTS.of(n.node).agent}`);
    }
  });

  it('spool --node checks that the agent answering on the node\'s admin port is that node', async () => {
    const a = PORTS.of('edge-a');
    const data = path.join(dir, 'nodes', 'edge-a', 'spool');
    // Another node's agent (say, one started by hand with the wrong --node) on edge-a's ports.
    const wrong = await startAgent('edge-b', a.agent, a.admin, ['--role', 'edge', '--data', data, '--upstream', 'http://127.0.0.1:9/v1/forward', '--heartbeat-seconds', '0']);
    const r = await cli(['spool', 'status', '--node', 'edge-a', ...local()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the agent at edge-a \(127\.0\.0\.1:\d+\) is node "edge-b", not edge-a \[EDGECTL_AGENT_REFUSED\]/);
    wrong.proc.kill('SIGKILL');
    await new Promise((res) => wrong.proc.once('exit', res));
    await startAgent('edge-a', a.agent, a.admin, ['--role', 'edge', '--data', data, '--upstream', 'http://127.0.0.1:9/v1/forward', '--heartbeat-seconds', '0']);
    const ok = await cli(['spool', 'status', '--node', 'edge-a', ...local(), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(json(ok).node).toBe('edge-a');
  });
});
