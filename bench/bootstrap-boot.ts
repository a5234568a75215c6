/**
 * bootstrap and the offline boot on a real systemd node (test/helpers/nspawn.ts: Debian bookworm
 * in systemd-nspawn, the cached root made once when missing). Prints, over RUNS power cuts:
 *   - bootstrap: first (upload, unit, start, the health gate: /healthz with the new version, or run/agent.state before a first release) and with nothing to change;
 *   - with 100,000 device messages spooled on the node (its hub unreachable, so they stay), after
 *     `current` is broken by hand and a power cut (SIGKILL to the container's init), the node
 *     booted with its link down: ms from systemd-nspawn's start to nginx serving the good
 *     release (polled from the node's netns every 20 ms), and from the service's start to the
 *     agent's reset-to-work and to "agent running" (the node's journal, monotonic clock).
 * It measures, it does not judge: exit 0 whatever the figures.
 *
 *   npm run build && npx vite-node bench/bootstrap-boot.ts [RUNS=5]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { writeApps, writeTestFleet } from '../test/apply/helpers.js';
import { cli } from '../test/helpers/cli.js';
import { bootNode } from '../test/helpers/nspawn.js';

const RUNS = Number(process.argv[2] ?? 5);
const ROOT = '/srv/edgectl';
const dir = await mkdtemp(join(tmpdir(), 'ec-bench-boot-'));
const key = join(dir, 'id');
const home = join(dir, 'home');
await execa('mkdir', ['-p', home]);
await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
const node = await bootNode({ name: 'ec-bench-boot', authorizedKey: await readFile(`${key}.pub`, 'utf8'), log: (s) => console.error(s) });
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms, min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)}`; };
try {
  const fleet = join(dir, 'fleet');
  const doc = `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: b1 }\nspec: { role: edge, address: ${node.address}, ssh: { user: root, port: 22 }, root: ${ROOT} }\n`;
  const app = (html: string) => [{ name: 'web', domain: 'www.bench.example', nodes: ['b1'], html }];
  await writeTestFleet(fleet, { nodes: ['b1'], nodeDocs: doc, apps: app('v1\n') });
  // Devices of tenant acme post to topic t (token "bench"); the fleet's hub (127.0.0.1:9) never answers.
  const sha = createHash('sha256').update('bench').digest('hex');
  await writeFile(join(fleet, 'tenants.yaml'), `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec:\n  uplink: { tokens: [{ name: dev, sha256: ${sha} }] }\n  quota: { spoolMb: 512 }\n`);
  await writeFile(join(fleet, 'apps-uplink.yaml'), `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: q }\nspec:\n  tenant: acme\n  type: static\n  domains: [q.bench.example]\n  static: { path: sites/web }\n  placement: { nodes: [b1] }\n  uplink: { topics: [t] }\n`);
  const e = async (args: string[]) => {
    const r = await cli([...args, '--fleet', fleet, '-i', key], { home, timeout: 300_000 });
    if (r.code !== 0) throw new Error(`${args[0]}: exit ${r.code}\n${r.stderr}`);
  };
  await e(['trust', 'b1']);
  let t0 = process.hrtime.bigint();
  await e(['bootstrap', 'b1', '--yes']);
  console.log(`bootstrap, first: ${ms(t0).toFixed(0)} ms`);
  t0 = process.hrtime.bigint();
  await e(['bootstrap', 'b1', '--yes']);
  console.log(`bootstrap, nothing to change: ${ms(t0).toFixed(0)} ms`);
  await e(['apply', '--yes', '--allow-dirty']);
  const v1 = (await node.exec(['readlink', `${ROOT}/current`])).stdout.trim();
  await writeApps(fleet, app('v2\n'));
  await e(['apply', '--yes', '--allow-dirty']);
  const MESSAGES = 100_000;
  const batch = join(dir, 'batch.ndjson');
  await writeFile(batch, Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ seq: i, temp: 21.5, site: 'bench' })).join('\n') + '\n');
  for (let k = 0; k < 60; k++) {
    const up = await node.inNetns(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `http://${node.address}/.edgectl/config`]);
    if (up.stdout === '200') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  // The agent finds its first agent.json within its 5 s poll: until then nginx answers 502.
  for (let b = 0, tries = 0; b < MESSAGES / 10_000; ) {
    const r = await node.inNetns(['curl', '-s', '-w', '\n%{http_code}', '--max-time', '60', '-H', 'Host: q.bench.example', '-H', 'Authorization: Bearer bench', '-H', 'Content-Type: application/x-ndjson', '--data-binary', `@${batch}`, `http://${node.address}/v1/q/t`]);
    if (/\n20[02]$/.test(r.stdout)) { b++; continue; }
    if (!/\n502$/.test(r.stdout) || ++tries > 60) throw new Error(`posting batch ${b}: ${r.stdout.slice(-300)} ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 500));
  }
  const depth = async () => {
    const conf = JSON.parse((await node.exec(['cat', `${ROOT}/current/agent/agent.json`])).stdout) as { admin: string; dataDir: string };
    const token = (await node.exec(['cat', `${conf.dataDir}/admin-token`])).stdout.trim();
    for (let k = 0; k < 100; k++) {
      const s = await node.inNetns(['curl', '-s', '--max-time', '2', '-H', `Authorization: Bearer ${token}`, `http://${conf.admin}/status`]);
      // The devices' queue only (the agent's own heartbeats queue up beside it while the hub is away).
      if (s.code === 0 && s.stdout.startsWith('{')) return (JSON.parse(s.stdout) as { queues: { tenant: string; depth: number }[] }).queues.filter((q) => q.tenant === 'acme').reduce((n, q) => n + q.depth, 0);
      await new Promise((r) => setTimeout(r, 100));
    }
    return NaN;
  };
  console.log(`spooled before the power cuts: ${await depth()} messages`);
  const serving: number[] = [];
  const reset: number[] = [];
  const running: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await node.exec(['sh', '-c', `ln -sfn ${v1} ${ROOT}/current.tmp && mv -T ${ROOT}/current.tmp ${ROOT}/current`]);
    await node.powerCut();
    await node.link(false);
    t0 = process.hrtime.bigint();
    const boot = node.boot();
    for (;;) {
      const c = await node.inNetns(['curl', '-s', '--max-time', '1', '-H', 'Host: www.bench.example', `http://${node.address}/`]);
      if (c.stdout.trim() === 'v2') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    serving.push(ms(t0));
    await boot;
    let j = '';
    for (let k = 0; k < 100 && !/agent running/.test(j); k++, await new Promise((r) => setTimeout(r, 100))) {
      j = (await node.exec(['journalctl', '-b', '-o', 'short-monotonic', '--no-pager', '-u', 'edgectl-agent'])).stdout;
    }
    const at = (re: RegExp) => Number(/^\[\s*([\d.]+)\]/.exec(j.split('\n').find((l) => re.test(l)) ?? '')?.[1] ?? NaN) * 1000;
    reset.push(at(/"msg":"reset-to-work"/) - at(/Started edgectl-agent/));
    running.push(at(/"msg":"agent running"/) - at(/Started edgectl-agent/));
    const d = await depth();
    if (d !== MESSAGES) console.log(`  run ${i + 1}: the spool holds ${d} messages, not ${MESSAGES}`);
    await node.link(true);
  }
  console.log(`power cut + broken current + ${MESSAGES} messages spooled, offline boot (${RUNS} runs):`);
  console.log(`  systemd-nspawn start -> nginx serves the good release: ${fmt(serving)}`);
  console.log(`  service start -> reset-to-work done (current back on good, nginx started): ${fmt(reset)}`);
  console.log(`  service start -> agent running (/healthz answers): ${fmt(running)}`);
  console.log(`  spool after the last boot: ${await depth()} messages`);
} finally {
  await node.close();
  await rm(dir, { recursive: true, force: true });
}
