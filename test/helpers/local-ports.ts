import { DEFAULT_LOCAL_PORT_RANGE, localPorts, type LocalPorts } from '../../src/lib/nodes/local-mode.js';
import { freePortRange } from './ports.js';

/**
 * Ports for a local-mode test: a free block of 5 × range ports on `host` (range: one slot per
 * node, or more when the test adds nodes later), and where each node's nginx and agent are in it
 * (nodes/local-mode.ts: the slot is the hash of the node's name, not its index).
 */
export interface LocalPortBlock {
  base: number;
  range: number;
  /** --local-port-base and --local-port-range, for the CLI. */
  flags: string[];
  /** The ports of node `name` among `names` (default: the nodes given here). */
  of: (name: string, names?: readonly string[]) => LocalPorts;
}

export async function localPortBlock(nodes: readonly string[], host = '127.0.0.1', range = Math.max(1, nodes.length)): Promise<LocalPortBlock> {
  if (range > DEFAULT_LOCAL_PORT_RANGE) throw new Error('range too large for a test');
  const base = await freePortRange(5 * range, host);
  return {
    base,
    range,
    flags: ['--local-port-base', String(base), '--local-port-range', String(range)],
    of: (name, names = nodes) => {
      const p = localPorts(names, { portBase: base, portRange: range }).get(name);
      if (!p) throw new Error(`no node ${name}`);
      return p;
    },
  };
}
