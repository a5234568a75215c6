import { describe, expect, it } from 'vitest';
import { placeApps, type PlacementApp, type PlacementNode } from '../../src/lib/placement/index.js';
import { mulberry32 as prng } from '../helpers/prng.js';


function randomFleet(seed: number, nNodes: number, nApps: number): { nodes: PlacementNode[]; apps: PlacementApp[] } {
  const r = prng(seed);
  const nodes: PlacementNode[] = Array.from({ length: nNodes }, (_, i) => ({
    name: `edge-${seed}-${i}`,
    role: 'edge',
    labels: { region: `r${Math.floor(r() * 3)}`, site: `s${Math.floor(r() * 6)}` },
    cpu: [1, 2, 4, 8][Math.floor(r() * 4)],
    kong: r() < 0.4,
  }));
  const apps: PlacementApp[] = Array.from({ length: nApps }, (_, i) => {
    const kind = Math.floor(r() * 4);
    const type = (['proxy', 'static', 'api', 'fastcgi'] as const)[Math.floor(r() * 4)];
    const placement =
      kind === 0 ? undefined
        : kind === 1 ? { replicas: 1 + Math.floor(r() * 4) }
          : kind === 2 ? { replicas: 1 + Math.floor(r() * 5), spreadBy: 'site' }
            : { selector: { region: `r${Math.floor(r() * 3)}` }, replicas: 1 + Math.floor(r() * 3), spreadBy: 'site' };
    return { name: `app-${i}`, tenant: 't', type, placement };
  });
  return { nodes, apps };
}

const asMap = (p: ReturnType<typeof placeApps>) => new Map(p.apps.map((a) => [a.app, a.nodes]));

describe('placement', () => {
  const nodes: PlacementNode[] = [
    { name: 'core', role: 'core', labels: {}, cpu: 16, kong: true },
    { name: 'relay', role: 'relay', labels: { region: 'n' }, cpu: 4, kong: false },
    { name: 'a1', role: 'edge', labels: { region: 'n', site: 'x' }, cpu: 2, kong: true },
    { name: 'a2', role: 'edge', labels: { region: 'n', site: 'x' }, cpu: 2, kong: false },
    { name: 'a3', role: 'edge', labels: { region: 'n', site: 'y' }, cpu: 2, kong: false },
    { name: 'b1', role: 'edge', labels: { region: 's', site: 'z' }, cpu: 2, kong: true },
  ];

  it('places an app without placement on every edge node, and never on relays or core', () => {
    const p = placeApps(nodes, [{ name: 'www', tenant: 't', type: 'static' }]);
    expect(p.apps[0]).toMatchObject({ mode: 'all', nodes: ['a1', 'a2', 'a3', 'b1'], shortfall: 0 });
  });

  it('places api apps only on Kong nodes', () => {
    const p = placeApps(nodes, [{ name: 'api', tenant: 't', type: 'api' }, { name: 'api2', tenant: 't', type: 'api', placement: { replicas: 3 } }]);
    expect(p.apps[0].nodes).toEqual(['a1', 'b1']);
    expect(p.apps[1]).toMatchObject({ nodes: ['a1', 'b1'], wanted: 3, shortfall: 1 });
  });

  it('honours selector, explicit nodes and replicas', () => {
    const p = placeApps(nodes, [
      { name: 'north', tenant: 't', type: 'proxy', placement: { selector: { region: 'n' } } },
      { name: 'pinned', tenant: 't', type: 'proxy', placement: { nodes: ['b1', 'a2'] } },
      { name: 'two', tenant: 't', type: 'proxy', placement: { replicas: 2 } },
    ]);
    const m = asMap(p);
    expect(m.get('north')).toEqual(['a1', 'a2', 'a3']);
    expect(m.get('pinned')).toEqual(['a2', 'b1']);
    expect(m.get('two')).toHaveLength(2);
    expect(p.byNode.get('b1')).toContain('pinned');
  });

  it('spreads replicas over distinct spreadBy values while there are enough, then fills', () => {
    for (let i = 0; i < 50; i++) {
      const m = asMap(placeApps(nodes, [{ name: `app-${i}`, tenant: 't', type: 'proxy', placement: { selector: { region: 'n' }, replicas: 2, spreadBy: 'site' } }]));
      const chosen = m.get(`app-${i}`)!;
      const sites = chosen.map((n) => nodes.find((x) => x.name === n)!.labels.site);
      expect(new Set(sites).size).toBe(2);
      // Three replicas over two sites: both sites, and three distinct nodes.
      const m3 = asMap(placeApps(nodes, [{ name: `app-${i}`, tenant: 't', type: 'proxy', placement: { selector: { region: 'n' }, replicas: 3, spreadBy: 'site' } }]));
      expect(m3.get(`app-${i}`)).toEqual(['a1', 'a2', 'a3']);
    }
  });

  it('is deterministic and independent of input order', () => {
    const f = randomFleet(1, 40, 60);
    const a = placeApps(f.nodes, f.apps);
    const b = placeApps([...f.nodes].reverse(), [...f.apps].reverse());
    expect(b.apps).toEqual(a.apps);
  });

  it('gives bigger nodes proportionally more replicas (weights = capacity.cpu)', () => {
    const weighted: PlacementNode[] = Array.from({ length: 20 }, (_, i) => ({ name: `n${i}`, role: 'edge', labels: {}, cpu: i < 10 ? 1 : 4, kong: false }));
    const apps: PlacementApp[] = Array.from({ length: 4000 }, (_, i) => ({ name: `a${i}`, tenant: 't', type: 'proxy', placement: { replicas: 1 } }));
    const p = placeApps(weighted, apps);
    const small = [...p.byNode].filter(([n]) => Number(n.slice(1)) < 10).reduce((s, [, a]) => s + a.length, 0);
    const big = 4000 - small;
    // Expected 4x: 800 vs 3200. Allow sampling noise.
    expect(big / small).toBeGreaterThan(3.3);
    expect(big / small).toBeLessThan(4.8);
  });

  it('property: adding or removing one node moves no app that has no replica on that node', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const f = randomFleet(seed, 8 + (seed % 30), 80);
      const before = asMap(placeApps(f.nodes, f.apps));
      const r = prng(seed * 977);
      // Remove a random node.
      const gone = f.nodes[Math.floor(r() * f.nodes.length)];
      const afterRemove = asMap(placeApps(f.nodes.filter((n) => n !== gone), f.apps));
      // Add a new node with random labels and weight.
      const added: PlacementNode = { name: `new-${seed}`, role: 'edge', labels: { region: `r${Math.floor(r() * 3)}`, site: `s${Math.floor(r() * 7)}` }, cpu: [1, 2, 4, 8][Math.floor(r() * 4)], kong: r() < 0.5 };
      const afterAdd = asMap(placeApps([...f.nodes, added], f.apps));
      let moved = 0;
      for (const app of f.apps) {
        const b = before.get(app.name)!;
        if (!b.includes(gone.name)) expect(afterRemove.get(app.name), `remove ${gone.name}: ${app.name}`).toEqual(b);
        else moved++;
        const a = afterAdd.get(app.name)!;
        if (!a.includes(added.name)) expect(a, `add ${added.name}: ${app.name}`).toEqual(b);
        // An app that gains the new node loses at most one replica elsewhere.
        else expect(b.filter((n) => !a.includes(n)).length).toBeLessThanOrEqual(1);
      }
      expect(moved).toBeLessThan(f.apps.length);
    }
  });
});
