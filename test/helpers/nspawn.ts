/**
 * A real systemd node for tests: a Debian bookworm root made once with debootstrap and cached in
 * a fixed directory outside the checkout, booted per test with systemd-nspawn inside a network
 * namespace the test creates (a veth pair from the root namespace), on an overlay so the cached
 * root itself is never written.
 *
 *   const node = await bootNode({ name: 'n1', authorizedKey: pub });   // first call may debootstrap (~4 min)
 *   node.address                  // the node's sshd is on node.address:22
 *   await node.exec(['systemctl', 'is-active', 'edgectl-agent'])       // inside the container (nsenter)
 *   await node.inNetns(['curl', ...])                                  // in the node's network namespace
 *   await node.powerCut()         // SIGKILL to the container's init: every process of the node ends at once
 *   await node.link(false)        // cut the link to the operator (the veth's root end down)
 *   await node.boot()             // boot the same disk again
 *   await node.close()            // kill, unmount, delete the namespace and the overlay
 *
 * Node.js: the cached root has none (a node without Node.js); the host's own `node` binary is
 * bind-mounted read-only at /usr/local/bin/node (same Debian, same glibc), unless `noNode`.
 * Needs root, debootstrap, systemd-container (systemd-nspawn), iproute2 and overlayfs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, unlink, writeFile, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { alive, run, signal, sleep, SLOT_DIR, takeSlot } from './lab-util.js';

export const DEBIAN_ROOT = process.env.EDGECTL_TEST_DEBIAN_ROOT ?? '/var/cache/edgectl-test/debian-bookworm-root';
// php-cgi: the FastCGI app the power-cut test serves through the node's nginx.
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'nginx-light', 'iproute2', 'curl', 'ca-certificates', 'php-cgi'];
/** Marks a finished root; named after the package list, so a changed list makes a new root once. */
const READY = `.edgectl-test-ready-${createHash('sha256').update(PACKAGES.join(' ')).digest('hex').slice(0, 12)}`;
const MIRROR = 'http://deb.debian.org/debian';

/**
 * The cached root, made when missing (debootstrap into a temporary sibling, then rename). Test
 * files run in parallel: one makes it (holding an O_EXCL lock file), the others wait for it.
 */
export async function ensureDebianRoot(log: (s: string) => void = () => {}): Promise<string> {
  const lock = `${DEBIAN_ROOT}.lock`;
  await mkdir(dirname(DEBIAN_ROOT), { recursive: true });
  for (const t0 = Date.now(); !existsSync(join(DEBIAN_ROOT, READY)); ) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
    } catch {
      const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim() || 0);
      if (owner && !alive(owner)) await unlink(lock).catch(() => {});
      else if (Date.now() - t0 > 1_200_000) throw new Error(`${DEBIAN_ROOT}: still being made by pid ${owner} after 20 min`);
      else await sleep(1000);
      continue;
    }
    try {
      if (!existsSync(join(DEBIAN_ROOT, READY))) await makeDebianRoot(log);
    } finally {
      await unlink(lock).catch(() => {});
    }
  }
  return DEBIAN_ROOT;
}

async function makeDebianRoot(log: (s: string) => void): Promise<void> {
  const tmp = `${DEBIAN_ROOT}.tmp-${process.pid}`;
  // Left by a run killed while making it (we hold the lock: nobody else is).
  const base = `${basename(DEBIAN_ROOT)}.tmp-`;
  for (const e of readdirSync(dirname(DEBIAN_ROOT))) if (e.startsWith(base)) await rm(join(dirname(DEBIAN_ROOT), e), { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const t0 = Date.now();
  log(`debootstrap bookworm into ${tmp} (once; cached in ${DEBIAN_ROOT})`);
  await execa('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', tmp, MIRROR], { timeout: 1_200_000 });
  await prepareRoot(tmp);
  await writeFile(join(tmp, READY), `made in ${Math.round((Date.now() - t0) / 1000)} s\n`);
  await rm(DEBIAN_ROOT, { recursive: true, force: true }); // a half-made one (never marked ready)
  await rename(tmp, DEBIAN_ROOT);
  log(`debian root ready in ${Math.round((Date.now() - t0) / 1000)} s`);
}

/** What a node needs beyond the packages: Debian's own nginx service off (edgectl's agent runs nginx from the node root). */
export async function prepareRoot(dir: string): Promise<void> {
  await rm(join(dir, 'etc/systemd/system/multi-user.target.wants/nginx.service'), { force: true });
  await rm(join(dir, 'etc/systemd/system/nginx.service'), { force: true });
  await symlink('/dev/null', join(dir, 'etc/systemd/system/nginx.service'));
  // No getty on the container's console: nothing reads it.
  await symlink('/dev/null', join(dir, 'etc/systemd/system/console-getty.service')).catch(() => {});
  await writeFile(join(dir, 'etc/hostname'), 'edgectl-test-node\n');
  await rm(join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(dir, 'var/cache/apt/archives/partial'), { recursive: true });
}

export interface BootOptions {
  name: string;
  /** A public key line authorised for root on the node. */
  authorizedKey: string;
  /** Do not bind-mount the host's node: the node has no Node.js runtime. */
  noNode?: boolean;
  log?: (s: string) => void;
}

export type NspawnNode = Awaited<ReturnType<typeof bootNode>>;

export async function bootNode(o: BootOptions) {
  const lower = await ensureDebianRoot(o.log);
  const slot = await takeSlot();
  const dir = await mkdtemp(`/var/tmp/ec-nspawn${slot}-`);
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const merged = join(dir, 'root');
  for (const d of [upper, work, merged]) await mkdir(d);
  await run(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
  await mkdir(join(merged, 'root/.ssh'), { recursive: true, mode: 0o700 });
  await writeFile(join(merged, 'root/.ssh/authorized_keys'), o.authorizedKey.trim() + '\n', { mode: 0o600 });
  await chmod(join(merged, 'root/.ssh'), 0o700);

  // The node's network: its own namespace, a veth to the root namespace (10.231.<slot*8>.0/30,
  // inside the lab's unreachable 10.231.0.0/16, in this slot's range).
  const netns = `ec-s${slot}-nspawn`;
  const a = `ec${slot}nsa`;
  const hostIp = `10.231.${slot * 8}.1`;
  const address = `10.231.${slot * 8}.2`;
  await execa('ip', ['netns', 'del', netns], { reject: false });
  await run(['ip', 'route', 'replace', 'unreachable', '10.231.0.0/16']);
  await run(['ip', 'netns', 'add', netns]);
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  await run(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', a]);
  await run(['ip', 'link', 'set', a, 'up']);
  await run(['ip', '-n', netns, 'addr', 'add', `${address}/30`, 'dev', 'eth0']);
  await run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up']);

  const consoleLog = join(dir, 'console.log');
  let proc: ChildProcess | undefined;
  let bootedAt = 0;

  /** Host pid of the container's init (PID 1 inside): the child of systemd-nspawn that is PID 1 in its namespace. */
  function leader(): number | undefined {
    const parent = proc?.pid;
    if (!parent || proc?.exitCode !== null || proc?.signalCode !== null) return undefined;
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const st = readFileSync(`/proc/${e}/status`, 'utf8');
        if (Number(/^PPid:\s+(\d+)/m.exec(st)?.[1]) !== parent) continue;
        const ns = /^NSpid:\s+(.*)$/m.exec(st)?.[1].trim().split(/\s+/);
        if (ns && ns.length > 1 && ns[ns.length - 1] === '1') return Number(e);
      } catch {
        /* gone */
      }
    }
    return undefined;
  }

  async function exec(argv: string[], input?: string) {
    const pid = leader();
    if (!pid) throw new Error(`${o.name}: the container is not running`);
    const r = await execa('nsenter', ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '--', ...argv], { reject: false, input, timeout: 60_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function inNetns(argv: string[]) {
    const r = await execa('ip', ['netns', 'exec', netns, ...argv], { reject: false, timeout: 60_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async function boot(): Promise<void> {
    const out = openSync(consoleLog, 'a');
    const args = ['--boot', '--register=no', '--keep-unit', `--network-namespace-path=/run/netns/${netns}`, '-D', merged, `--machine=${o.name}`, '--console=pipe'];
    if (!o.noNode) args.push(`--bind-ro=${process.execPath}:/usr/local/bin/node`);
    proc = spawn('systemd-nspawn', args, { stdio: ['ignore', out, out] });
    closeSync(out);
    bootedAt = Date.now();
    // Up when systemd says so (degraded counts: some units of a container always fail).
    for (let i = 0; i < 300; i++) {
      if (proc.exitCode !== null) throw new Error(`${o.name}: systemd-nspawn exited ${proc.exitCode}:\n${(await readFile(consoleLog, 'utf8')).slice(-3000)}`);
      if (leader()) {
        const r = await exec(['systemctl', 'is-system-running']).catch(() => undefined);
        if (r && /running|degraded/.test(r.stdout)) return;
      }
      await sleep(200);
    }
    throw new Error(`${o.name}: not booted after 60 s:\n${(await readFile(consoleLog, 'utf8')).slice(-3000)}`);
  }

  /** SIGKILL to the container's init: the kernel ends every process of its PID namespace at once. */
  async function powerCut(): Promise<void> {
    const pid = leader();
    if (pid) signal(pid, 'SIGKILL');
    const p = proc;
    if (p && p.exitCode === null && p.signalCode === null) await Promise.race([new Promise((r) => p.once('exit', r)), sleep(15_000)]);
    for (let i = 0; i < 50 && leader(); i++) await sleep(100);
    proc = undefined;
  }

  async function link(up: boolean): Promise<void> {
    await run(['ip', 'link', 'set', a, up ? 'up' : 'down']);
  }

  async function close(): Promise<void> {
    await powerCut().catch(() => {});
    proc?.kill('SIGKILL');
    const pids = await execa('ip', ['netns', 'pids', netns], { reject: false });
    for (const pid of String(pids.stdout).split('\n').filter(Boolean)) signal(Number(pid), 'SIGKILL');
    await execa('ip', ['netns', 'del', netns], { reject: false });
    await execa('ip', ['link', 'del', a], { reject: false });
    for (let i = 0; i < 20; i++) {
      const r = await execa('umount', [merged], { reject: false });
      if (r.exitCode === 0 || !existsSync(join(merged, 'etc'))) break;
      await sleep(200);
    }
    await rm(dir, { recursive: true, force: true });
    await unlink(join(SLOT_DIR, String(slot))).catch(() => {});
  }

  try {
    await boot();
  } catch (e) {
    await close();
    throw e;
  }
  return { name: o.name, address, hostIp, netns, dir, merged, consoleLog, exec, inNetns, boot, powerCut, link, close, leader, bootedAt: () => bootedAt };
}
