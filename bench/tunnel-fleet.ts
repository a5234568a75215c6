/**
 * 100 reverse nodes behind one relay against 100 direct nodes behind the same relay (issue 16):
 * `plan` and a no-op `apply` of each fleet, in alternation, in one run (the machine may be shared:
 * only the ratio means much). The lab (test/helpers/hosts.ts): one relay on real sshd in its own
 * namespace; direct edges on its bridge, reached relay → edge; reverse edges with sshd on their
 * own 127.0.0.1 only, reached relay → 127.0.0.1:tunnelPort → the node's tunnel. Here the tunnels
 * are held by the lab's `ssh -N -R` (an OpenSSH client per node), not by 100 agents: edgectl's
 * side, what is measured, is the same either way (bench/tunnel-reconnect.ts measures the agent's).
 * Goal: reverse within 1.5× direct. It measures, it does not judge: exit 0 whatever the figures.
 *
 *   npx vite-node bench/tunnel-fleet.ts [NODES=100] [ROUNDS=3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPlan, bundlesOf } from '../src/lib/apply/index.js';
import type { FleetModel } from '../src/lib/fleet/model.js';
import { silentLogger } from '../src/lib/logger.js';
import { isSuccess } from '../src/lib/release/outcome.js';
import { planFleet, type FleetDeps } from '../src/lib/plan/index.js';
import { createConnector } from '../src/lib/transport/connect.js';
import { killNginx, writeApps } from '../test/apply/helpers.js';
import { createLab, type LabHost } from '../test/helpers/hosts.js';
import { freePort } from '../test/helpers/ports.js';

const N = Number(process.argv[2] ?? 100);
const ROUNDS = Number(process.argv[3] ?? 3);
const lab = await createLab();
const dir = await mkdtemp(join(tmpdir(), 'ec-tunnel-fleet-'));
const fmt = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return `median ${s[Math.floor(s.length / 2)].toFixed(2)} s (min ${s[0].toFixed(2)}, max ${s[s.length - 1].toFixed(2)})`; };
try {
  const relay = await lab.addHost('relay-1', { relay: true });
  const t0 = Date.now();
  const direct = await lab.addHosts(Array.from({ length: N }, (_, i) => `d-${i}`), { behind: relay });
  const reverse = await lab.addHosts(Array.from({ length: N }, (_, i) => `r-${i}`), { behind: relay, reverseTunnel: true });
  process.stderr.write(`lab: relay + ${N} direct + ${N} reverse hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  // The lab's `ssh -R` clients give up after 3 unanswered keepalives (15 s), which a loaded 2-core
  // machine starting 200 nginx can cause: before each measurement, dead ones are opened again
  // (same argv, more patient) and counted, so that both fleets are measured whole.
  let reopened = 0;
  const listening = async () => new Set((await lab.execIn(relay, ['ss', '-Hltn'])).stdout.split('\n').map((l) => /127\.0\.0\.1:(\d+)/.exec(l)?.[1]).filter(Boolean).map(Number));
  async function keepTunnels(): Promise<void> {
    const up = await listening();
    const dead = reverse.filter((h) => !up.has(h.tunnelPort!));
    for (const h of dead) {
      reopened++;
      lab.spawnIn(h, ['ssh', '-N', '-i', lab.clientKey, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${join(h.dir, 'relay_known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'ExitOnForwardFailure=yes', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=60', '-o', 'BatchMode=yes', '-R', `127.0.0.1:${h.tunnelPort}:127.0.0.1:22`, `root@10.231.${relay.down!.octet}.1`], join(h.dir, 'tunnel-again.log'));
    }
    for (let i = 0; i < 200 && dead.length; i++) {
      const now = await listening();
      if (dead.every((h) => now.has(h.tunnelPort!))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (dead.length) throw new Error('reverse tunnels did not come back');
  }
  // The relay is in both fleets (with a different tunnel/authorized_keys in each): only the edges are measured.
  const edges: Record<string, string[]> = { direct: direct.map((h) => h.name), reverse: reverse.map((h) => h.name) };
  const HTTP = await freePort();
  const fleets: Record<string, string> = {};
  for (const [kind, hosts] of [['direct', direct], ['reverse', reverse]] as [string, LabHost[]][]) {
    const fleet = join(dir, kind);
    await lab.writeFleet(fleet, { pin: true, hosts: [relay, ...hosts] });
    await writeFile(join(fleet, 'nodes.yaml'), [relay, ...hosts].map((h) => lab.nodeDoc(h, { pin: true, spec: h.relay ? {} : { role: 'edge', http: { address: '0.0.0.0', port: HTTP } } })).join('---\n'));
    await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
    await writeApps(fleet, [{ name: 'web', domain: 'www.acme.test', nodes: hosts.map((h) => h.name), html: 'web v1\n' }]);
    fleets[kind] = fleet;
  }
  const deps = (fleet: string): FleetDeps => ({
    logger: silentLogger, now: () => new Date(), edgectlVersion: 'bench',
    connect: (model: FleetModel) => createConnector({ model, fleetRoot: fleet, identity: [lab.clientKey], userKnownHosts: false, systemKnownHosts: false, sshConfig: false, agentSocket: false }),
  });
  async function planOnly(kind: string): Promise<number> {
    if (kind === 'reverse') await keepTunnels();
    const t = performance.now();
    const p = await planFleet(deps(fleets[kind]), { fleet: fleets[kind], nodes: edges[kind], concurrency: 16, diff: false });
    const s = (performance.now() - t) / 1000;
    const bad = p.plan.nodes.filter((n) => n.reachable === false);
    if (bad.length) throw new Error(`${kind}: ${bad.length} nodes unreachable in plan`);
    return s;
  }
  async function apply(kind: string, expectNoop: boolean): Promise<number> {
    if (kind === 'reverse') await keepTunnels();
    const t = performance.now();
    const p = await planFleet(deps(fleets[kind]), { fleet: fleets[kind], nodes: expectNoop ? edges[kind] : undefined, concurrency: 16, diff: false, keepConnections: true });
    try {
      const r = await applyPlan(p.plan, bundlesOf(p), { connector: p.connector, logger: silentLogger, now: () => new Date(), states: p.states }, { canary: 0, batch: '100%', maxFailures: 0, concurrency: 16 });
      const outcomes = new Map<string, number>();
      for (const n of r.nodes) outcomes.set(n.outcome, (outcomes.get(n.outcome) ?? 0) + 1);
      const failed = r.nodes.filter((n) => !isSuccess(n.outcome));
      if (failed.length) throw new Error(`${kind}: ${failed.length} nodes failed: ${JSON.stringify(failed[0]).slice(0, 400)}`);
      if (expectNoop && (outcomes.get('applied') ?? 0) > 0) throw new Error(`${kind}: the no-op apply applied ${outcomes.get('applied')} nodes`);
      return (performance.now() - t) / 1000;
    } finally {
      await p.connector.close();
    }
  }
  for (const kind of ['direct', 'reverse']) process.stderr.write(`${kind}: first apply ${(await apply(kind, false)).toFixed(1)} s\n`);
  const times: Record<string, { plan: number[]; apply: number[] }> = { direct: { plan: [], apply: [] }, reverse: { plan: [], apply: [] } };
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of i % 2 ? ['reverse', 'direct'] : ['direct', 'reverse']) times[kind].plan.push(await planOnly(kind));
    for (const kind of i % 2 ? ['reverse', 'direct'] : ['direct', 'reverse']) times[kind].apply.push(await apply(kind, true));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const kind of ['direct', 'reverse']) console.log(`${N} ${kind} nodes behind one relay: plan ${fmt(times[kind].plan)}; no-op apply ${fmt(times[kind].apply)}`);
  console.log(`(${reopened} of the lab's ssh -R tunnels died under load and were opened again between measurements)`);
  console.log(`reverse / direct: plan ${(med(times.reverse.plan) / med(times.direct.plan)).toFixed(2)}×, no-op apply ${(med(times.reverse.apply) / med(times.direct.apply)).toFixed(2)}× (goal: within 1.5×; ${ROUNDS} rounds in alternation, machine shared with other work)`);
} finally {
  await killNginx(lab.dir).catch(() => {});
  await lab.close();
  await rm(dir, { recursive: true, force: true });
}
