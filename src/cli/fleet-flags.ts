import { Flags } from '@oclif/core';
import { EdgectlError } from '../lib/errors.js';
import { parseSelectorFlags } from '../lib/fleet/selector.js';
import { stderrLogger } from './logger.js';

/**
 * Flags shared by the commands that reach nodes (plan, apply, drift, rollback). `--local DIR`
 * is the embedded default: every node is the directory DIR/<node> on this machine, no SSH, each
 * node's nginx and agent on ports of its own that stay when nodes are added (nodes/local-mode.ts).
 */
export const targetFlags = {
  fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
  node: Flags.string({ char: 'n', summary: 'Only this node (repeatable)', multiple: true, multipleNonGreedy: true }),
  selector: Flags.string({ char: 'l', summary: 'Only nodes with these labels, key=value (repeatable)', multiple: true, multipleNonGreedy: true }),
  concurrency: Flags.integer({ summary: 'Nodes handled in parallel', default: 16, min: 1, max: 1000 }),
  identity: Flags.string({ char: 'i', summary: 'SSH private key file (repeatable)', multiple: true, multipleNonGreedy: true }),
  'accept-new': Flags.boolean({ summary: 'Record first-seen host keys in the fleet\'s known_hosts (a changed key is always refused)' }),
  local: Flags.string({ summary: 'Embedded mode: every node is the directory DIR/<node> on this machine (no SSH)', helpValue: 'DIR' }),
  'local-port-base': Flags.integer({ summary: 'Embedded mode: first port; a node\'s nginx is on base + its slot, its agent on base + range + 2 × slot (plan shows them)', default: 18080, min: 1, max: 65000 }),
  'local-port-range': Flags.integer({ summary: 'Embedded mode: port slots; a node\'s slot is the hash of its name, stable when nodes are added', default: 1000, min: 1, max: 20000 }),
  'local-address': Flags.string({ summary: 'Embedded mode: the address every node\'s nginx listens on', default: '127.0.0.1' }),
  'age-identity': ageIdentityFlag(),
};

/** --age-identity: decrypts the fleet's secrets (else EDGECTL_AGE_IDENTITY_FILE, else ~/.config/edgectl/age/keys.txt). */
export function ageIdentityFlag() {
  return Flags.string({ summary: 'age identity file that decrypts the fleet\'s secrets (default: $EDGECTL_AGE_IDENTITY_FILE, else ~/.config/edgectl/age/keys.txt)', helpValue: 'FILE' });
}

/** Rollout flags of apply and drift --fix; unset ones come from the fleet's spec.rollout. */
export const rolloutFlags = {
  canary: Flags.integer({ summary: 'Nodes to apply to first, before any batch (default: fleet rollout.canary, else 0)', min: 0 }),
  batch: Flags.string({ summary: 'Nodes per batch after the canaries: N or P% (default: fleet rollout.batchSize, else all)' }),
  'max-failures': Flags.string({ summary: 'Stop starting nodes once failures exceed N or P% (default: fleet rollout.maxFailures, else 0)' }),
};

export const rolloutOverrides = (f: { canary?: number; batch?: string; 'max-failures'?: string }) => ({ canary: f.canary, batch: f.batch, maxFailures: f['max-failures'] });

/** --selector k=v flags as a selector; a malformed one is a usage error. */
export function parseSelector(flags: readonly string[] | undefined): Record<string, string> | undefined {
  const selector = parseSelectorFlags(flags);
  if (typeof selector === 'string') throw new EdgectlError('EDGECTL_USAGE', selector);
  return selector;
}

export interface TargetFlagValues {
  fleet: string;
  node?: string[];
  selector?: string[];
  concurrency: number;
  identity?: string[];
  'accept-new': boolean;
  local?: string;
  'local-port-base': number;
  'local-port-range': number;
  'local-address': string;
  'age-identity'?: string;
}

/** Deps and target options for the core, from the shared flags. */
export async function fleetDeps(flags: TargetFlagValues, version: string) {
  const { createConnector } = await import('../lib/transport/connect.js');
  const { resolve } = await import('node:path');
  const { prepareWriteDir } = await import('../lib/safe-fs/write-dir.js');
  const selector = parseSelector(flags.selector);
  const logger = stderrLogger();
  // Created mode 0755 (nginx workers, user nobody, traverse the node roots to serve static
  // files), and never through a link inside the fleet (the demo's .edgectl/nodes is in it).
  const localRoot = flags.local ? await prepareWriteDir(resolve(flags.local), flags.fleet, 'local nodes') : undefined;
  const { secretOpener } = await import('../lib/secrets/opener.js');
  const secrets = secretOpener({ flag: flags['age-identity'], env: process.env });
  const deps = {
    logger,
    secrets,
    now: () => new Date(),
    edgectlVersion: version,
    connect: (model: import('../lib/fleet/model.js').FleetModel, lr?: string) => createConnector({ model, fleetRoot: flags.fleet, identity: flags.identity, acceptNew: flags['accept-new'], localRoot: lr ?? localRoot, logger }),
  };
  const target = {
    fleet: flags.fleet,
    nodes: flags.node,
    selector,
    concurrency: flags.concurrency,
    ...(localRoot ? { local: { root: localRoot, portBase: flags['local-port-base'], portRange: flags['local-port-range'], address: flags['local-address'] } } : {}),
  };
  return { deps, target, logger };
}
