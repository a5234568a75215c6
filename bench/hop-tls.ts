/**
 * Uplink hop over TLS against plain HTTP, in the same run: how fast an edge agent hands its spool
 * to the next hop (a hub with a file sink) when the hop speaks HTTPS with a fleet-CA certificate
 * (ECDSA P-256, verified against the pinned CA), and when it speaks plain HTTP. Prints figures;
 * exits 0 whatever they are.
 *
 *   npm run build && npx vite-node bench/hop-tls.ts [--quick]
 *
 * Per run: a fresh edge and hub (real `edgectl agent` processes), N messages posted to the edge
 * as NDJSON batches of 1000 while the hub is up; the figure is N over the time from the first
 * post to the hub having accepted all N (intake.forwardedAccepted), so it is the forward path
 * (batches of up to 1000 messages, one in flight, each synced at the hub before its 200). Plain
 * and TLS alternate, three runs each; every run is printed, and the median of each.
 * Addresses 127.0.17.30/31, ports the kernel gives.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credential, killAll, sha, startAgent, status, stopAgent, waitFor } from '../test/agent/helpers.js';
import { freePortRange } from '../test/helpers/ports.js';
import { createCa, issueServerCert } from '../src/lib/tls-hop/x509.js';

const QUICK = process.argv.includes('--quick');
const N = QUICK ? 50_000 : 200_000;
const RUNS = QUICK ? 2 : 3;
const EDGE = '127.0.17.30', HUB = '127.0.17.31';
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function run(dir: string, tls: boolean, i: number): Promise<number> {
  const d = path.join(dir, `${tls ? 'tls' : 'plain'}-${i}`);
  const [E, H] = [await freePortRange(2, EDGE), await freePortRange(3, HUB)];
  const node = `edge-b${i}${tls ? 't' : 'p'}`;
  const cred = credential(dir, node);
  const common = ['--topic', 'acme/events', '--heartbeat-seconds', '0', '--spool-bytes', String(2 ** 31)];
  const hub = await startAgent('hub-b', H, H + 1, ['--role', 'hub', '--data', path.join(d, 'hub'), '--sink', `file:${path.join(d, 'sink.jsonl')}`, '--accept-forward', cred.accept(), ...common,
    ...(tls ? ['--forward-tls-listen', `${HUB}:${H + 2}`, '--forward-tls-cert', path.join(dir, 'hub.pem'), '--forward-tls-key', path.join(dir, 'hub.key.pem')] : [])], { host: HUB });
  const edge = await startAgent(node, E, E + 1, ['--role', 'edge', '--data', path.join(d, 'edge'), '--credential-file', cred.file, '--token', `acme:${sha('tok')}`, ...common,
    ...(tls ? ['--upstream', `https://${HUB}:${H + 2}`, '--upstream-ca', path.join(dir, 'ca.pem')] : ['--upstream', `http://${HUB}:${H}`])], { host: EDGE });
  const line = JSON.stringify({ temp: 21.5, device: 'd-0001', seq: 0 });
  const batch = Array.from({ length: 1000 }, () => line).join('\n') + '\n';
  const t0 = performance.now();
  for (let sent = 0; sent < N; sent += 1000) {
    const r = await fetch(`http://${EDGE}:${E}/v1/q/events`, { method: 'POST', body: batch, headers: { authorization: 'Bearer tok', 'content-type': 'application/x-ndjson' } });
    if (r.status !== 202) throw new Error(`edge answered ${r.status}: ${await r.text()}`);
  }
  await waitFor(async () => (await status(hub)).intake.forwardedAccepted >= N, 600_000, 'the hub to have every message', 50);
  const secs = (performance.now() - t0) / 1000;
  const st = await status(edge);
  if (tls && st.forward.tls?.state !== 'ok') throw new Error(`TLS run without verified TLS: ${JSON.stringify(st.forward.tls)}`);
  await stopAgent(edge);
  await stopAgent(hub);
  rmSync(d, { recursive: true, force: true });
  return N / secs;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgectl-bench-hoptls-'));
  try {
    const ca = await createCa({ name: 'bench fleet CA', days: 30 });
    const hop = await issueServerCert(ca, { cn: 'hub-b', names: [HUB], days: 30 });
    writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(path.join(dir, 'hub.pem'), hop.certPem);
    writeFileSync(path.join(dir, 'hub.key.pem'), hop.keyPem, { mode: 0o600 });
    console.log(`edge → hub forwarding, ${fmt(N)} messages of ${JSON.stringify({ temp: 21.5, device: 'd-0001', seq: 0 }).length} B per run, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? '?'}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    const plain: number[] = [], tls: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(await run(dir, false, i));
      console.log(`  run ${i + 1} plain HTTP: ${fmt(plain[i])} msg/s`);
      tls.push(await run(dir, true, i));
      console.log(`  run ${i + 1} HTTPS (fleet CA, P-256): ${fmt(tls[i])} msg/s`);
    }
    const p = median(plain), t = median(tls);
    console.log(`median: plain ${fmt(p)} msg/s, HTTPS ${fmt(t)} msg/s → HTTPS / plain ${(t / p).toFixed(2)}x (load after: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  } finally {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (e) => {
  console.error(e);
  await killAll();
  process.exit(1);
});
