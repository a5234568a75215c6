import { EdgectlError } from '../errors.js';
import { didYouMean } from '../fleet/problems.js';
import { matchesSelector } from '../fleet/selector.js';

/** Which nodes a run is about: by name (each must exist), by labels, or both (both must hold). */
export interface NodeSelection {
  nodes?: readonly string[];
  selector?: Record<string, string>;
}

/**
 * The one "unknown node" error: a usage error, with the closest name as the hint. `where` prefixes
 * the message (a plan file naming a node); `fleet` names the fleet directory in the hint.
 */
export function unknownNode(name: string, known: Iterable<string>, o: { where?: string; fleet?: string } = {}): EdgectlError {
  const fleet = o.fleet ? `the fleet at ${o.fleet}` : 'the fleet';
  const next = didYouMean(name, known) ?? 'run `edgectl placement` or look under nodes/ for node names.';
  return new EdgectlError('EDGECTL_USAGE', `${o.where ? `${o.where}: ` : ''}unknown node "${name}"`, { hint: `${fleet} has no node named "${name}": ${next}` });
}

/** Throws unknownNode for the first name that is not a node of the fleet. */
export function requireNodes(names: Iterable<string>, known: ReadonlySet<string> | ReadonlyMap<string, unknown>, o?: { where?: string; fleet?: string }): void {
  for (const n of names) if (!known.has(n)) throw unknownNode(n, known.keys(), o);
}

/** The node of that name, or the unknown-node error. */
export function findNode<N>(byName: ReadonlyMap<string, N>, name: string): N {
  const n = byName.get(name);
  if (n === undefined) throw unknownNode(name, byName.keys());
  return n;
}

/** The selected nodes, in fleet order. No names and no selector: all of them. */
export function selectNodes<N extends { name: string; labels: Record<string, string> }>(all: readonly N[], sel: NodeSelection): N[] {
  let out = [...all];
  if (sel.nodes && sel.nodes.length > 0) {
    requireNodes(sel.nodes, new Set(all.map((n) => n.name)));
    const wanted = new Set(sel.nodes);
    out = out.filter((n) => wanted.has(n.name));
  }
  if (sel.selector) out = out.filter((n) => matchesSelector(n.labels, sel.selector));
  return out;
}
