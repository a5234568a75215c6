import type { AppSpec } from '../fleet/schema.js';
import type { FleetModel } from '../fleet/model.js';
import { resolvedNodes } from '../fleet/model.js';
import { matchesSelector } from '../fleet/selector.js';
import { hashName, pairUnitRaw, rendezvousScore, type NameHash } from './hash.js';

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
  /** Position in the name-sorted edge list. */
  pos: number;
}

/** Higher score first; the node name breaks (astronomically unlikely) ties. */
function better(scores: Float64Array, el: Candidate[], a: number, b: number): boolean {
  return scores[a] > scores[b] || (scores[a] === scores[b] && el[a].node.name < el[b].node.name);
}

/** Indexes (into `el`/`scores`) of the k best, best first; k is usually tiny. */
function topK(idx: number[], scores: Float64Array, el: Candidate[], k: number): number[] {
  if (k <= 0) return [];
  if (k * 8 >= idx.length) return [...idx].sort((a, b) => (better(scores, el, a, b) ? -1 : 1)).slice(0, k);
  const top: number[] = [];
  for (const it of idx) {
    const full = top.length === k;
    if (full && !better(scores, el, it, top[k - 1])) continue;
    let i = full ? k - 1 : top.length;
    while (i > 0 && better(scores, el, it, top[i - 1])) {
      top[i] = top[i - 1];
      i--;
    }
    top[i] = it;
  }
  return top;
}

function pickReplicas(app: PlacementApp, el: Candidate[], replicas: number, index: EdgeIndex): string[] {
  const ah = hashName(app.name);
  const n = el.length;
  const scores = new Float64Array(n);
  const { h1, h2, cpu } = index;
  for (let i = 0; i < n; i++) {
    const pos = el[i].pos;
    scores[i] = rendezvousScore(cpu[pos], pairUnitRaw(ah.h1, ah.h2, h1[pos], h2[pos]));
  }
  const names = (idx: number[]) => idx.map((i) => el[i].node.name);
  const all = Array.from({ length: n }, (_, i) => i);
  const spreadBy = app.placement?.spreadBy;
  if (!spreadBy) return names(topK(all, scores, el, replicas));
  // One replica per spread value: the best node of each group, best groups first. This is the
  // same as walking all nodes by score and skipping groups already used.
  const group = index.groupsOf(spreadBy);
  const best = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const g = group[el[i].pos];
    const cur = best.get(g);
    if (cur === undefined || better(scores, el, i, cur)) best.set(g, i);
  }
  const first = topK([...best.values()], scores, el, replicas);
  if (first.length >= replicas) return names(first);
  // Not enough distinct values: fill with the best remaining nodes.
  const taken = new Set(first);
  const rest = topK(all.filter((i) => !taken.has(i)), scores, el, replicas - first.length);
  return names([...first, ...rest]);
}

/** Edge nodes indexed by label, so a selector costs its smallest matching list, not the fleet. */
class EdgeIndex {
  private readonly byLabel = new Map<string, Candidate[]>();

  private readonly groups = new Map<string, Int32Array>();

  /** For a label key: a small integer per edge node (by position) naming its value; no label = one group. */
  groupsOf(key: string): Int32Array {
    let g = this.groups.get(key);
    if (!g) {
      const ids = new Map<string, number>();
      g = new Int32Array(this.all.length);
      for (const c of this.all) {
        const v = c.node.labels[key] ?? '';
        let id = ids.get(v);
        if (id === undefined) ids.set(v, (id = ids.size));
        g[c.pos] = id;
      }
      this.groups.set(key, g);
    }
    return g;
  }

  /** Hash lanes and weights by position, for the scoring loop. */
  readonly h1: Uint32Array;
  readonly h2: Uint32Array;
  readonly cpu: Float64Array;

  constructor(readonly all: Candidate[]) {
    this.h1 = Uint32Array.from(all, (c) => c.hash.h1);
    this.h2 = Uint32Array.from(all, (c) => c.hash.h2);
    this.cpu = Float64Array.from(all, (c) => c.node.cpu);
    for (const c of all) {
      for (const k in c.node.labels) {
        const key = `${k}=${c.node.labels[k]}`;
        const list = this.byLabel.get(key);
        if (list) list.push(c);
        else this.byLabel.set(key, [c]);
      }
    }
  }

  /** Nodes matching every label of the selector, in name order. */
  matching(selector: Record<string, string> | undefined): Candidate[] {
    if (!selector || Object.keys(selector).length === 0) return this.all;
    let best: Candidate[] | undefined;
    for (const k in selector) {
      const list = this.byLabel.get(`${k}=${selector[k]}`) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    return Object.keys(selector).length === 1 ? best! : best!.filter((c) => matchesSelector(c.node.labels, selector));
  }
}

export function placeApps(nodes: PlacementNode[], apps: PlacementApp[]): Placement {
  const edges: Candidate[] = nodes
    .filter((n) => n.role === 'edge')
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((node, pos) => ({ node, hash: hashName(node.name), pos }));
  const index = new EdgeIndex(edges);
  const edgeByName = new Map(edges.map((c) => [c.node.name, c]));
  const out: AppPlacement[] = [];
  for (const app of [...apps].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = app.placement;
    const isApi = app.type === 'api';
    let chosen: string[];
    let mode: AppPlacement['mode'];
    let wanted: number;
    if (p?.nodes) {
      mode = 'nodes';
      chosen = [...new Set(p.nodes)].filter((n) => {
        const c = edgeByName.get(n);
        return c !== undefined && (!isApi || c.node.kong);
      });
      wanted = new Set(p.nodes).size;
    } else {
      let eligible = index.matching(p?.selector);
      if (isApi) eligible = eligible.filter((c) => c.node.kong);
      if (p?.replicas === undefined) {
        mode = 'all';
        chosen = eligible.map((c) => c.node.name);
        wanted = chosen.length;
      } else {
        mode = 'replicas';
        wanted = p.replicas;
        chosen = pickReplicas(app, eligible, p.replicas, index);
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
  const nodes = [...resolvedNodes(model).values()].map((r) => ({ name: r.name, role: r.role, labels: r.labels, cpu: r.capacity.cpu, kong: r.kong }));
  const apps = model.apps.map((a) => ({ name: a.name, tenant: a.spec.tenant, type: a.spec.type, placement: a.spec.placement }));
  return placeApps(nodes, apps);
}
