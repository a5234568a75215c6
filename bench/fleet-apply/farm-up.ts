/**
 * Start a farm of N nodes and its fleet, print the fleet directory, and keep them up until
 * SIGINT/SIGTERM: for looking at one apply by hand (profiles, timelines) without the whole bench.
 *   npx vite-node bench/fleet-apply/farm-up.ts -- --nodes 50
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { startFarm } from './farm.js';
import { writeBenchFleet } from './fleet.js';
import { endRunProcs } from './procs.js';

const args = process.argv.slice(2);
const i = args.indexOf('--nodes');
const nodes = i >= 0 ? Number(args[i + 1]) : 50;
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 500) throw new Error('--nodes: 1 to 500');
const log = (s: string) => process.stderr.write(`${s}\n`);
const tmp = await mkdtemp('/srv/edgectl-efu-');
await chmod(tmp, 0o755);
const farm = await startFarm(tmp, nodes, log);
const fleet = await writeBenchFleet(path.join(tmp, 'fleet'), farm.nodes, { clientKey: farm.clientKey, rootsDir: path.join(tmp, 'e'), httpPort: 8080 });
process.stdout.write(`${fleet.dir}\n`);
const stop = async () => {
  await endRunProcs(tmp, farm.sshdPids);
  await farm.stop();
  await rm(tmp, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
setInterval(() => {}, 1 << 30);
