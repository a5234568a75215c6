import { describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { resolveNodes, resolvedNodes } from '../../src/lib/fleet/model.js';
import { EXAMPLE } from '../helpers/paths.js';

/** Nodes are resolved once per node list and defaults: validation's rules and the run that follows share the result. */
describe('resolveNodes', () => {
  it('is computed once for the model\'s node list, and again only for other defaults', async () => {
    const { model } = await loadFleet(EXAMPLE);
    const once = resolvedNodes(model);
    expect(resolveNodes(model.nodes, model.fleet.spec.defaults)).toBe(once);
    expect(resolvedNodes(model)).toBe(once);
    expect([...once.keys()]).toEqual(model.nodes.map((n) => n.name));
    const other = { ...model.fleet.spec.defaults, root: '/srv/edgectl-other' };
    const withOther = resolveNodes(model.nodes, other);
    expect(withOther).not.toBe(once);
    const unset = model.nodes.filter((n) => n.spec.root === undefined).map((n) => n.name);
    expect(unset.length).toBeGreaterThan(0);
    for (const name of unset) expect(withOther.get(name)!.root).toBe('/srv/edgectl-other');
  });
});
