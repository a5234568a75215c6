import type { FleetModel } from '../fleet/model.js';
import type { Logger } from '../logger.js';
import type { Bundle } from './bundle.js';
import type { CheckResult } from './check.js';

export interface RenderToDirOptions {
  fleet: string;
  rev?: string;
  nodes?: string[];
  selector?: Record<string, string>;
  out: string;
  /** Run nginx -t (and deck validate where installed) on every bundle written. */
  check: boolean;
  edgectlVersion: string;
  logger: Logger;
  /** --age-identity: decrypts the fleet's secrets (else the variable, else the default file). */
  ageIdentity?: string;
}

export interface RenderedToDir {
  model: FleetModel;
  bundles: Bundle[];
  /** Rendering and writing, in ms (the check not included). */
  ms: number;
  check?: { results: CheckResult[]; deckMissing: boolean };
}

/** `edgectl render`: load the fleet, render every selected node and write its bundle under `out`, then check them if asked. */
export async function renderToDir(o: RenderToDirOptions): Promise<RenderedToDir> {
  const { loadFleet } = await import('../fleet/load.js');
  const { renderFleet } = await import('./index.js');
  const { BundleWriter } = await import('./write-pipeline.js');
  const { secretOpener } = await import('../secrets/opener.js');
  const loaded = await loadFleet(o.fleet, o.rev);
  const secrets = secretOpener({ flag: o.ageIdentity, env: process.env });
  const started = performance.now();
  // Bundles are written on a worker thread as they are rendered.
  const writer = new BundleWriter(o.out, { fleetRoot: o.fleet });
  let bundles;
  try {
    bundles = await renderFleet(loaded, { nodes: o.nodes, selector: o.selector, edgectlVersion: o.edgectlVersion, logger: o.logger, secrets, onBundle: (b) => writer.add(b) });
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.close();
  const ms = Math.round(performance.now() - started);
  if (!o.check) return { model: loaded.model, bundles, ms };
  const { checkBundles } = await import('./check.js');
  return { model: loaded.model, bundles, ms, check: await checkBundles(o.out, bundles.map((b) => b.node), { logger: o.logger }) };
}
