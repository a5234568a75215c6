import type { AppSpec } from '../fleet/schema.js';
import type { FleetModel } from '../fleet/model.js';
import { resolveNode } from '../fleet/model.js';
import { matchesSelector } from '../fleet/selector.js';
import { hashName, pairUnit, rendezvousScore, type NameHash } from './hash.js';

/**
 * The placement scheduler: which edge nodes run which app. Pure and deterministic.
 *
 * - `placement.nodes`: exactly those nodes.
 * - no `replicas`: every eligible edge node (matching the selector, if any).
 * - `replicas: r`: weighted rendezvous (highest-random-weight) hashing with weight
 *   capacity.cpu; with `spreadBy`, at most one replica per label value while there are enough
 *   distinct values, then the best-scoring remaining nodes.
 * Eligible = role edge, and kong: true for api apps.
 *
 * Stability: a node's score for an app depends only on (app, node), so adding or removing a
 * node changes the result only for apps that gain or lose a replica on that node.
 */
export interface PlacementNode {
  name: string;
  role: 'core' | 'relay' | 'edge';
  labels: Record<string, string>;
  cpu: number;
  kong: boolean;
}

export interface PlacementApp {
  name: string;
  tenant: string;
  type: AppSpec['type'];
  placement?: AppSpec['placement'];
}

export interface AppPlacement {
  app: string;
  tenant: string;
  type: AppSpec['type'];
  /** How the nodes were chosen. */
  mode: 'all' | 'replicas' | 'nodes';
  /** Replicas asked for (replicas mode), else the number of nodes. */
  wanted: number;
  /** Chosen nodes, sorted by name. */
  nodes: string[];
  /** wanted - nodes.length when there were not enough eligible nodes. */
  shortfall: number;
}

export interface Placement {
  /** Sorted by app name. */
  apps: AppPlacement[];
  /** Node name -> app names placed on it (sorted); only nodes with at least one app. */
  byNode: Map<string, string[]>;
}

interface Candidate {
  node: PlacementNode;
  hash: NameHash;
}

interface Scored {
  name: string;
  score: number;
  group: string;
}

/** Higher score first; the node name breaks (astronomically unlikely) ties. */
function better(a: Scored, b: Scored): boolean {
  return a.score > b.score || (a.score === b.score && a.name < b.name);
}

/** The k best of `items` in order, without sorting all of them (k is usually tiny). */
function topK(items: Scored[], k: number): Scored[] {
  if (k <= 0) return [];
  if (k * 8 >= items.length) return [...items].sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0)).slice(0, k);
  const top: Scored[] = [];
  for (const it of items) {
    if (top.length === k && !better(it, top[k - 1])) continue;
    let i = top.length === k ? k - 1 : top.length;
    while (i > 0 && better(it, top[i - 1])) {
      top[i] = top[i - 1];
      i--;
    }
    top[i] = it;
    if (top.length > k) top.length = k;
  }
  return top;
}

function pickReplicas(app: PlacementApp, eligible: Candidate[], replicas: number): string[] {
  const ah = hashName(app.name);
  const spreadBy = app.placement?.spreadBy;
  const scored: Scored[] = eligible.map((c) => ({
    name: c.node.name,
    score: rendezvousScore(c.node.cpu, pairUnit(ah, c.hash)),
    group: spreadBy ? (c.node.labels[spreadBy] ?? '') : '',
  }));
  if (!spreadBy) return topK(scored, replicas).map((s) => s.name);
  // One replica per spread value: the best node of each group, best groups first. This is the
  // same as walking all nodes by score and skipping groups already used.
  const bestOfGroup = new Map<string, Scored>();
  for (const s of scored) {
    const cur = bestOfGroup.get(s.group);
    if (!cur || better(s, cur)) bestOfGroup.set(s.group, s);
  }
  const first = topK([...bestOfGroup.values()], replicas);
  if (first.length >= replicas) return first.map((s) => s.name);
  // Not enough distinct values: fill with the best remaining nodes.
  const taken = new Set(first.map((s) => s.name));
  const rest = topK(scored.filter((s) => !taken.has(s.name)), replicas - first.length);
  return [...first, ...rest].map((s) => s.name);
}

export function placeApps(nodes: PlacementNode[], apps: PlacementApp[]): Placement {
  const edges: Candidate[] = nodes
    .filter((n) => n.role === 'edge')
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((node) => ({ node, hash: hashName(node.name) }));
  const edgeByName = new Map(edges.map((c) => [c.node.name, c]));
  const out: AppPlacement[] = [];
  for (const app of [...apps].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = app.placement;
    const fits = (c: Candidate) => app.type !== 'api' || c.node.kong;
    let chosen: string[];
    let mode: AppPlacement['mode'];
    let wanted: number;
    if (p?.nodes) {
      mode = 'nodes';
      chosen = [...new Set(p.nodes)].filter((n) => {
        const c = edgeByName.get(n);
        return c !== undefined && fits(c);
      });
      wanted = new Set(p.nodes).size;
    } else {
      const eligible = edges.filter((c) => fits(c) && matchesSelector(c.node.labels, p?.selector));
      if (p?.replicas === undefined) {
        mode = 'all';
        chosen = eligible.map((c) => c.node.name);
        wanted = chosen.length;
      } else {
        mode = 'replicas';
        wanted = p.replicas;
        chosen = pickReplicas(app, eligible, p.replicas);
      }
    }
    chosen.sort();
    out.push({ app: app.name, tenant: app.tenant, type: app.type, mode, wanted, nodes: chosen, shortfall: Math.max(0, wanted - chosen.length) });
  }
  const byNode = new Map<string, string[]>();
  for (const a of out) {
    for (const n of a.nodes) {
      const list = byNode.get(n);
      if (list) list.push(a.app);
      else byNode.set(n, [a.app]);
    }
  }
  return { apps: out, byNode };
}

/** Placement of a validated fleet. */
export function placeFleet(model: FleetModel): Placement {
  const nodes = model.nodes.map((n) => {
    const r = resolveNode(model.fleet.spec, n);
    return { name: r.name, role: r.role, labels: r.labels, cpu: r.capacity.cpu, kong: r.kong };
  });
  const apps = model.apps.map((a) => ({ name: a.name, tenant: a.spec.tenant, type: a.spec.type, placement: a.spec.placement }));
  return placeApps(nodes, apps);
}
