import { Flags } from '@oclif/core';
import type { Logger } from '../lib/logger.js';
import { colorsFor } from './output.js';

/**
 * Flags shared by the commands that reach nodes (plan, apply, drift, rollback). `--local DIR`
 * is the embedded default: every node is the directory DIR/<node> on this machine, no SSH,
 * each node's nginx on 127.0.0.1:<local-port-base + its index in the fleet>.
 */
export const targetFlags = {
  fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
  node: Flags.string({ char: 'n', summary: 'Only this node (repeatable)', multiple: true }),
  selector: Flags.string({ char: 'l', summary: 'Only nodes with these labels, key=value (repeatable)', multiple: true }),
  concurrency: Flags.integer({ summary: 'Nodes handled in parallel', default: 16, min: 1, max: 1000 }),
  identity: Flags.string({ char: 'i', summary: 'SSH private key file (repeatable)', multiple: true }),
  'accept-new': Flags.boolean({ summary: 'Record first-seen host keys in the fleet\'s known_hosts (a changed key is always refused)' }),
  local: Flags.string({ summary: 'Embedded mode: every node is the directory DIR/<node> on this machine (no SSH)', helpValue: 'DIR' }),
  'local-port-base': Flags.integer({ summary: 'Embedded mode: node n (fleet order) serves HTTP on this port + n', default: 18080, min: 1, max: 65000 }),
  'local-address': Flags.string({ summary: 'Embedded mode: the address every node\'s nginx listens on', default: '127.0.0.1' }),
};

export function stderrLogger(): Logger {
  const c = colorsFor(process.stderr);
  const debug = !!process.env.EDGECTL_DEBUG;
  const line = (s: string, f?: Record<string, unknown>) => process.stderr.write(s + (f && Object.keys(f).length ? c.dim(' ' + JSON.stringify(f)) : '') + '\n');
  return {
    debug: (m, f) => debug && line(c.dim(m), f),
    info: (m, f) => debug && line(c.dim(m), f),
    warn: (m, f) => line(`${c.yellow('warning')} ${m}`, f),
    error: (m, f) => line(`${c.red('error')} ${m}`, f),
  };
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
  'local-address': string;
}

/** Deps and target options for the core, from the shared flags. */
export async function fleetDeps(flags: TargetFlagValues, version: string) {
  const { createConnector } = await import('../lib/transport/connect.js');
  const { parseSelectorFlags } = await import('../lib/fleet/selector.js');
  const { EdgectlError } = await import('../lib/errors.js');
  const { resolve } = await import('node:path');
  const { prepareWriteDir } = await import('../lib/safe-fs/write-dir.js');
  const selector = parseSelectorFlags(flags.selector);
  if (typeof selector === 'string') throw new EdgectlError('EDGECTL_USAGE', selector);
  const logger = stderrLogger();
  // Created mode 0755 (nginx workers, user nobody, traverse the node roots to serve static
  // files), and never through a link inside the fleet (the demo's .edgectl/nodes is in it).
  const localRoot = flags.local ? await prepareWriteDir(resolve(flags.local), flags.fleet, 'local nodes') : undefined;
  const deps = {
    logger,
    now: () => new Date(),
    edgectlVersion: version,
    connect: (model: import('../lib/fleet/model.js').FleetModel, lr?: string) => createConnector({ model, fleetRoot: flags.fleet, identity: flags.identity, acceptNew: flags['accept-new'], localRoot: lr ?? localRoot, logger }),
  };
  const target = {
    fleet: flags.fleet,
    nodes: flags.node,
    selector,
    concurrency: flags.concurrency,
    ...(localRoot ? { local: { root: localRoot, portBase: flags['local-port-base'], address: flags['local-address'] } } : {}),
  };
  return { deps, target, logger };
}
