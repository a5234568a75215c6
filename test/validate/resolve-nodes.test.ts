import { describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { resolveNodes, resolvedNodes } from '../../src/lib/fleet/model.js';
import { EXAMPLE } from '../helpers/paths.js';

/** A model's nodes are resolved once per model; validation resolves its own list with the same defaults. */
describe('resolveNodes', () => {
  it('is computed once per model, in fleet order, and resolveNodes applies the defaults it is given', async () => {
    const { model } = await loadFleet(EXAMPLE);
    const once = resolvedNodes(model);
    expect(resolvedNodes(model)).toBe(once);
    expect([...once.keys()]).toEqual(model.nodes.map((n) => n.name));
    expect(resolveNodes(model.nodes, model.fleet.spec.defaults)).toEqual(once);
    const other = { ...model.fleet.spec.defaults, root: '/srv/edgectl-other' };
    const withOther = resolveNodes(model.nodes, other);
    const unset = model.nodes.filter((n) => n.spec.root === undefined).map((n) => n.name);
    expect(unset.length).toBeGreaterThan(0);
    for (const name of unset) expect(withOther.get(name)!.root).toBe('/srv/edgectl-other');
  });
});
