/**
 * Issue 13: `edgectl bootstrap` of 50 nodes against an `edgectl apply` of the same 50 nodes
 * (goal: bootstrap at most 2x apply). `npm run build`, then:
 *
 *     npx vite-node bench/bootstrap-fleet.ts -- [--nodes 50] [--rounds 2] [--concurrency 16] [--offset 0] [--keep]
 *
 * The lab: bench/fleet-apply's (one real sshd per node on its own loopback address, the same
 * fleet: nginx per node, about five apps each), at 127.0.9.x so it can run beside that bench. What
 * is NOT real, stated: bootstrap needs systemd on the node, and 50 booted nspawn containers do not
 * fit 2 shared cores. So each node's sshd runs in a mount namespace of its own (unshare -m) where
 * a stand-in `systemctl`/`journalctl` (a bash script written below, bench-only; the tests use a
 * real systemd node, test/bootstrap/power-cut.test.ts) is bind-mounted over /usr/bin's, with
 * per-node /run/systemd and /etc/systemd/system. It starts the unit's ExecStart as a detached
 * process and answers show/is-active/is-enabled/enable/daemon-reload/restart/stop from it: no
 * hardening, no automatic restart. Everything else is what a real node does: the probe, the
 * upload (the agent bundle and the node's LevelDB addon, ~2 MB per node), sha256sum -c, the
 * credential, the unit file, and the REAL agent started per node, its health gate (the agent's
 * run/agent.state before a release; /healthz after) included. Node.js is the node's own (this
 * machine's /usr/bin/node), so no runtime is copied.
 *
 * Per round (on wiped nodes): first bootstrap, first apply (its one-shot also HUPs each node's
 * agent and waits for /healthz with the new agent.json), then the no-op bootstrap and the no-op
 * apply, their order alternating per round. The machine is shared with other work: the ratios
 * are of runs made in the same round, back to back.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { nodeAddress, nodeName, type FarmNode } from './fleet-apply/farm.js';
import { writeBenchFleet } from './fleet-apply/fleet.js';
import { measure, type Measured } from './fleet-apply/measure.js';
import { endRunProcs } from './fleet-apply/procs.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('nodes', '50'));
const ROUNDS = Number(arg('rounds', '2'));
const CONCURRENCY = Number(arg('concurrency', '16'));
const OFFSET = Number(arg('offset', '0'));
const keep = process.argv.includes('--keep');
// 127.0.9.1 .. : nodeAddress(i) is 127.0.4.i; 5 blocks up, clear of bench/fleet-apply's nodes.
const BLOCK_SHIFT = 5 * 254;
if (!Number.isInteger(N) || N < 1 || N > 254) throw new Error('--nodes: 1..254');
const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/** The stand-in for systemctl and journalctl in each node's mount namespace (see the header). */
const FAKE_SYSTEMCTL = `#!/bin/bash
# bench/bootstrap-fleet.ts: a bench-only stand-in for systemd, one edgectl-agent.service per node.
s=/run/systemd/bench; unit=/etc/systemd/system/edgectl-agent.service; mkdir -p "$s"
pid() { local p=; IFS= read -r p <"$s/pid" 2>/dev/null; [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"; }
stop() { local p i=0; p=$(pid) || return 0; kill "$p"; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; kill -9 "$p" 2>/dev/null; rm -f "$s/pid"; }
start() { local cmd; cmd=$(sed -n 's/^ExecStart=//p' "$unit"); [ -n "$cmd" ] || return 1
  setsid $cmd </dev/null >>"$s/journal" 2>&1 & echo $! >"$s/pid"; }
q=; a=(); props=(); value=
while [ $# -gt 0 ]; do case "$1" in --quiet) q=1;; --value) value=1;; -p) props+=("$2"); shift;; --*) ;; *) a+=("$1");; esac; shift; done
case "\${a[0]:-}" in
  daemon-reload) exit 0;;
  enable) touch "$s/enabled";;
  is-enabled) [ -e "$s/enabled" ] || { [ -n "$q" ] || echo disabled; exit 1; }; [ -n "$q" ] || echo enabled;;
  is-active) if pid >/dev/null; then [ -n "$q" ] || echo active; else [ -n "$q" ] || echo inactive; exit 3; fi;;
  restart) stop; start;;
  stop) stop;;
  show) p=$(pid) || p=0; st=inactive; [ "$p" != 0 ] && st=active
    for k in "\${props[@]}"; do case "$k" in ActiveState) x=$st;; NRestarts) x=0;; MainPID) x=$p;; *) x=;; esac
      if [ -n "$value" ]; then echo "$x"; else echo "$k=$x"; fi; done;;
  *) echo "bench systemctl: \${a[0]:-} not supported" >&2; exit 1;;
esac
`;
const FAKE_JOURNALCTL = `#!/bin/bash
n=20; while [ $# -gt 0 ]; do case "$1" in -n) n=$2; shift;; esac; shift; done
tail -n "$n" /run/systemd/bench/journal 2>/dev/null
`;

function sshdConfig(n: FarmNode, authorizedKeys: string): string {
  return [
    `ListenAddress ${n.address}:22`, `HostKey ${n.dir}/ssh_host_ed25519_key`, `PidFile ${n.dir}/sshd.pid`, `AuthorizedKeysFile ${authorizedKeys}`,
    'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
    'MaxStartups 300', 'MaxSessions 50', 'PrintMotd no', 'UseDNS no', 'Subsystem sftp internal-sftp', `SetEnv HOME=${n.dir}/home`, '',
  ].join('\n');
}

async function banner(host: string, ms: number): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port: 22 });
      const done = (v: boolean) => (s.destroy(), resolve(v));
      s.setTimeout(1000, () => done(false));
      s.once('data', (d) => done(d.toString().startsWith('SSH-')));
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${host}:22 did not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tmp = await mkdtemp('/srv/edgectl-ebf-');
await chmod(tmp, 0o755);
const children: ChildProcess[] = [];
let tornDown = false;
async function teardown(): Promise<void> {
  if (tornDown) return;
  tornDown = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const n = await endRunProcs(tmp, children.map((c) => c.pid!).filter(Boolean));
  if (n) log(`teardown: ended ${n} processes of this run`);
  if (keep) log(`kept ${tmp}`);
  else await rm(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void teardown().finally(() => process.exit(130)));

interface Round { firstBootstrap: Measured; firstApply: Measured; noopBootstrap: Measured; noopApply: Measured }
const rounds: Round[] = [];
try {
  const farm = path.join(tmp, 'farm');
  const fake = path.join(farm, 'fake');
  await mkdir(fake, { recursive: true });
  await writeFile(path.join(fake, 'systemctl'), FAKE_SYSTEMCTL, { mode: 0o755 });
  await writeFile(path.join(fake, 'journalctl'), FAKE_JOURNALCTL, { mode: 0o755 });
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const clientKey = path.join(farm, 'client_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-bench', '-f', clientKey]);
  const authorizedKeys = path.join(farm, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`), { mode: 0o600 });
  const nodes: FarmNode[] = [];
  for (let i = 1; i <= N; i++) {
    const dir = path.join(farm, nodeName(i));
    for (const d of ['home', 'run-systemd/system', 'etc-systemd-system']) await mkdir(path.join(dir, d), { recursive: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', `${dir}/ssh_host_ed25519_key`]);
    const hostKey = (await readFile(`${dir}/ssh_host_ed25519_key.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const n: FarmNode = { index: i, name: nodeName(i), address: nodeAddress(BLOCK_SHIFT + OFFSET + i), hostKey, dir };
    await writeFile(`${dir}/sshd_config`, sshdConfig(n, authorizedKeys));
    nodes.push(n);
    const script = [
      `mount --bind ${dir}/run-systemd /run/systemd`,
      `mount --bind ${dir}/etc-systemd-system /etc/systemd/system`,
      `mount --bind ${fake}/systemctl /usr/bin/systemctl`,
      `mount --bind ${fake}/journalctl /usr/bin/journalctl`,
      `exec /usr/sbin/sshd -D -f ${dir}/sshd_config -E ${dir}/sshd.log`,
    ].join(' && ');
    children.push(spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: 'ignore' }));
  }
  for (const n of nodes) await banner(n.address, 20_000);
  log(`farm: ${N} sshd, each in its own mount namespace (${nodes[0].address} .. ${nodes[N - 1].address})`);

  const fleetDir = path.join(tmp, 'fleet');
  const rootsDir = path.join(tmp, 'roots');
  await writeBenchFleet(fleetDir, nodes, { rootsDir, httpPort: 8080, clientKey });
  const git = (...a: string[]) => run('git', ['-C', fleetDir, '-c', 'user.email=b@b.example', '-c', 'user.name=bench', ...a]);
  const env = { ...process.env, HOME: path.join(farm, 'home-op'), NO_COLOR: '1' };
  await mkdir(env.HOME, { recursive: true });
  const cli = (label: string, args: string[]) =>
    measure(label, [process.execPath, path.join(repo, 'bin', 'run.js'), ...args, '--fleet', fleetDir, '--concurrency', String(CONCURRENCY), '--yes', '--json'], { env, timeoutMs: 15 * 60_000, logPrefix: path.join(tmp, `${label}-${rounds.length}`) });
  const bootstrap = (label: string) => cli(label, ['bootstrap']);
  const apply = (label: string) => cli(label, ['apply']);
  const check = (m: Measured, want: (j: { nodes: { status?: string; outcome?: string }[] }) => string | undefined) => {
    let j: { nodes: { status?: string; outcome?: string }[] } | undefined;
    try {
      j = JSON.parse(m.stdout) as never;
    } catch {
      // below
    }
    const bad = j ? want(j) : 'no JSON report';
    if (m.exitCode !== 0 || bad) throw new Error(`${m.label}: exit ${m.exitCode}, ${bad ?? ''}\n${m.stderr.slice(-2000)}\n${m.stdout.slice(0, 2000)}`);
    log(`${m.label}: ${m.wallS.toFixed(2)} s`);
    return m;
  };
  const all = (field: 'status' | 'outcome', ok: string[]) => (j: { nodes: { status?: string; outcome?: string }[] }) => {
    const off = j.nodes.filter((n) => !ok.includes(String(n[field])));
    return j.nodes.length !== N ? `${j.nodes.length} nodes reported` : off.length ? `${off.length} nodes ${field} ${[...new Set(off.map((n) => n[field]))].join(',')}` : undefined;
  };
  const wipe = async () => {
    for (const n of nodes) {
      const s = path.join(n.dir, 'run-systemd', 'bench');
      const p = Number((await readFile(path.join(s, 'pid'), 'utf8').catch(() => '0')).trim());
      if (p) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      await rm(s, { recursive: true, force: true });
      await rm(path.join(n.dir, 'etc-systemd-system', 'edgectl-agent.service'), { force: true });
    }
    await endRunProcs(rootsDir, []); // the nodes' nginx
    await rm(rootsDir, { recursive: true, force: true });
    await run('git', ['-C', fleetDir, 'checkout', '-q', '--', '.']).catch(() => {});
  };

  for (let r = 0; r < ROUNDS; r++) {
    if (r > 0) await wipe();
    await run('git', ['init', '-q', fleetDir]).catch(() => {});
    await git('add', '-A');
    await git('commit', '-qm', `round ${r}`, '--allow-empty');
    const firstBootstrap = check(await bootstrap('first bootstrap'), all('status', ['installed']));
    await git('add', '-A');
    await git('commit', '-qm', 'record the node credentials', '--allow-empty');
    const firstApply = check(await apply('first apply'), all('outcome', ['applied']));
    // Not timed: every node's real agent answers /healthz with the build bootstrap installed and
    // the release's agent.json, and nothing of the stand-in leaked out of the namespaces.
    const version = (JSON.parse(firstBootstrap.stdout) as { nodes: { version: string }[] }).nodes[0].version;
    const bad: string[] = [];
    for (const n of nodes) {
      const h = (await fetch(`http://${n.address}:9000/healthz`, { signal: AbortSignal.timeout(3000) }).then((x) => x.json(), () => ({}))) as { ok?: boolean; version?: string; config?: string };
      if (!h.ok || h.version !== version || !h.config) bad.push(`${n.name}: ${JSON.stringify(h)}`);
    }
    if (bad.length) throw new Error(`agents not healthy after the first apply: ${bad.slice(0, 3).join('; ')}`);
    if (existsSync('/etc/systemd/system/edgectl-agent.service') || existsSync('/run/systemd/bench')) throw new Error('the stand-in systemd wrote outside its namespaces');
    log(`checked: ${N} agents answer /healthz ok with version ${version} and their agent.json`);
    const noops: Measured[] = [];
    for (const which of r % 2 === 0 ? ['b', 'a'] : ['a', 'b']) {
      noops.push(which === 'b' ? check(await bootstrap('no-op bootstrap'), all('status', ['unchanged'])) : check(await apply('no-op apply'), all('outcome', ['unchanged'])));
    }
    const noopBootstrap = noops.find((m) => m.label === 'no-op bootstrap')!;
    const noopApply = noops.find((m) => m.label === 'no-op apply')!;
    rounds.push({ firstBootstrap, firstApply, noopBootstrap, noopApply });
  }
} catch (e) {
  log(`benchmark failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  await teardown();
}

if (rounds.length) {
  const med = (xs: number[]) => {
    const o = [...xs].sort((a, b) => a - b);
    return (o[Math.floor((o.length - 1) / 2)] + o[Math.ceil((o.length - 1) / 2)]) / 2;
  };
  const f = (s: number) => `${s.toFixed(2)} s`;
  console.log(`\nbootstrap vs apply, ${N} nodes, --concurrency ${CONCURRENCY}, ${rounds.length} round(s), ${cpus().length} cores shared with other work`);
  console.log('round  first bootstrap  first apply  ratio   no-op bootstrap  no-op apply  ratio');
  rounds.forEach((r, i) => console.log(`${String(i + 1).padEnd(7)}${f(r.firstBootstrap.wallS).padEnd(17)}${f(r.firstApply.wallS).padEnd(13)}${(r.firstBootstrap.wallS / r.firstApply.wallS).toFixed(2).padEnd(8)}${f(r.noopBootstrap.wallS).padEnd(17)}${f(r.noopApply.wallS).padEnd(13)}${(r.noopBootstrap.wallS / r.noopApply.wallS).toFixed(2)}`));
  const fr = med(rounds.map((r) => r.firstBootstrap.wallS / r.firstApply.wallS));
  const nr = med(rounds.map((r) => r.noopBootstrap.wallS / r.noopApply.wallS));
  console.log(`median ratio: first ${fr.toFixed(2)}, no-op ${nr.toFixed(2)} (goal: bootstrap <= 2x apply: ${fr <= 2 && nr <= 2 ? 'met' : 'NOT met'})`);
  console.log(`operator CPU (user+sys, median): first bootstrap ${med(rounds.map((r) => r.firstBootstrap.cpuS)).toFixed(2)} s, first apply ${med(rounds.map((r) => r.firstApply.cpuS)).toFixed(2)} s`);
}
