import type { FleetModel } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import type { Connector } from '../transport/connect.js';
import { computePlan } from './compute.js';
import { desiredState } from './desired.js';
import { localModel, localPorts, type LocalMode } from '../nodes/local-mode.js';
import { observeNodes } from './observe.js';
import { selectNodes } from '../nodes/select.js';
import { warmConnections, type Warmed } from '../nodes/warm.js';
import type { Plan } from './types.js';
import type { NodeState } from '../release/state.js';
import type { SecretOpener } from '../secrets/opener.js';
import type { HopRenewal } from '../tls-hop/apply-renew.js';

export type { Plan } from './types.js';
export { computePlan } from './compute.js';

/** Side effects a fleet-wide operation needs, injected by the command (tests pass real local ones). */
export interface FleetDeps {
  logger: Logger;
  now: () => Date;
  edgectlVersion: string;
  /** Opens transports for the (possibly local-mode) model; localRoot: every node is <localRoot>/<node>. */
  connect: (model: FleetModel, localRoot?: string) => Connector;
  /** Decrypts the fleet's secrets (render) and a saved plan's sealed files (apply PLAN). */
  secrets?: SecretOpener;
}

export interface TargetOptions {
  fleet: string;
  rev?: string;
  nodes?: string[];
  selector?: Record<string, string>;
  local?: LocalMode;
  /** Nodes read (or applied) in parallel. */
  concurrency: number;
}

export interface Planned {
  plan: Plan;
  /** Bundle file contents by sha256: what a saved plan carries and apply sends. */
  blobs: Map<string, Buffer>;
  /** Secret files by sha256: their age files from the fleet, which a saved plan carries instead of the bytes. */
  sealed: Map<string, { file: string; data: Buffer }>;
  connector: Connector;
  /** The fleet as planned (local mode applied): callers need not load it again. */
  model: FleetModel;
  /** Reads a file of the fleet as planned (its revision with --rev): certificates for days to expiry. */
  readExtra: (relPath: string) => Promise<Buffer | undefined>;
  /** Each reachable node's state as plan read it, over `connector`: apply starts from it instead of reading again. */
  states: Map<string, NodeState>;
  /** Hop certificates due within the renew threshold: renewed (apply) or to be (plan); tls-hop/apply-renew.ts. */
  hopRenewals: HopRenewal[];
  /** The fleet was clean and only this apply's renewed hop certificates make it dirty. */
  dirtyOnlyByHopRenewal: boolean;
}

/**
 * Handshakes begun while the fleet renders: at least this many (more with a higher --concurrency).
 * plan keeps its connections for apply anyway; this bounds how many handshakes run at once. At 50
 * nodes on loopback, warming all of them instead of the first 16 made a no-op apply about 10-15%
 * faster (bench/fleet-apply/RESULTS.md).
 */
const WARM_AT_LEAST = 64;

/** Render, read every target node concurrently, compute the plan. The caller closes `connector`. */
export async function planFleet(deps: FleetDeps, opts: TargetOptions & { diff: boolean; keepConnections?: boolean; renewHops?: 'plan' | 'apply' }): Promise<Planned> {
  const { loadFleet } = await import('../fleet/load.js');
  let loaded = await loadFleet(opts.fleet, opts.rev);
  let model = opts.local ? localModel(loaded.model, opts.local) : loaded.model;
  // Hop certificates due: apply renews them into the working tree (then renders from it), plan says so.
  const { renewDueHopCerts } = await import('../tls-hop/apply-renew.js');
  const { secretOpener } = await import('../secrets/opener.js');
  const hopRenewals = await renewDueHopCerts(loaded, model, { mode: opts.renewHops ?? 'plan', nodes: opts.nodes, selector: opts.selector, secrets: deps.secrets ?? secretOpener({ env: process.env }), log: deps.logger, now: deps.now() });
  const wasClean = !loaded.model.dirty;
  if (hopRenewals.some((r) => r.outcome === 'renewed')) {
    loaded = await loadFleet(opts.fleet, opts.rev);
    model = opts.local ? localModel(loaded.model, opts.local) : loaded.model;
  }
  const dirtyOnlyByHopRenewal = wasClean && loaded.model.dirty && hopRenewals.some((r) => r.outcome === 'renewed');
  const connector = deps.connect(model);
  if (opts.keepConnections) connector.keepOpen();
  let warm: Warmed | undefined;
  try {
    // The first nodes' handshakes run while the fleet renders (an unknown name: render says so).
    let first: string[] = [];
    try {
      first = selectNodes(model.nodes, { nodes: opts.nodes, selector: opts.selector }).map((n) => n.name);
    } catch {
      /* reported by the render */
    }
    warm = warmConnections(connector, first, Math.max(opts.concurrency, WARM_AT_LEAST));
    const desired = await desiredState({ ...loaded, model }, { nodes: opts.nodes, selector: opts.selector, edgectlVersion: deps.edgectlVersion, logger: deps.logger, route: (n) => connector.route(n), secrets: deps.secrets });
    deps.logger.debug('rendered', { nodes: desired.nodes.length });
    const observed = await observeNodes(connector, desired.nodes, { concurrency: opts.concurrency, diff: opts.diff });
    await warm.release();
    const plan = computePlan(desired.nodes, observed, {
      createdAt: deps.now().toISOString(),
      edgectl: deps.edgectlVersion,
      fleet: { name: model.name, commit: model.commit ?? null, dirty: model.dirty },
      ...(opts.local ? { local: { root: opts.local.root, ports: Object.fromEntries(localPorts(model.nodes.map((n) => n.name), opts.local)) } } : {}),
      diff: opts.diff,
    });
    const blobs = new Map<string, Buffer>();
    const sealed = new Map<string, { file: string; data: Buffer }>();
    for (const d of desired.nodes) {
      for (const f of desired.bundles.get(d.node)!.files) {
        blobs.set(d.manifest.files[f.path].sha256, f.data);
        if (f.sealed) sealed.set(d.manifest.files[f.path].sha256, f.sealed);
      }
    }
    const states = new Map<string, NodeState>();
    for (const [node, o] of observed) if (o.state) states.set(node, o.state);
    const source = loaded.source;
    return { plan, blobs, sealed, connector, model, states, readExtra: (p) => source.readExtra(p), hopRenewals, dirtyOnlyByHopRenewal };
  } catch (e) {
    await warm?.release();
    await connector.close();
    throw e;
  }
}
