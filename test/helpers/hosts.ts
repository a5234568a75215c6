/**
 * Real sshd hosts for tests: a "lab" of nodes, each with its own sshd, host key and root dir,
 * on distinct loopback addresses or inside network namespaces behind relays.
 *
 *   import { createLab } from '../helpers/hosts.js';
 *   let lab: Lab;
 *   beforeAll(async () => { lab = await createLab(); });
 *   afterAll(async () => { await lab?.close(); });     // kills every process (also daemons started through
 *                                                       // a node's sshd: all in its netns, or naming the lab dir), deletes every netns
 *
 *   const core  = await lab.addHost('core-1');                     // root namespace, 127.0.1.x:220xx
 *   const relay = await lab.addHost('relay-1', { relay: true });   // own netns, 10.231.x.y:22, reachable from here
 *   const edge  = await lab.addHost('edge-1', { behind: relay });  // own netns, reachable ONLY from relay-1's netns
 *   const nat   = await lab.addHost('edge-9', { behind: relay, reverseTunnel: true }); // sshd on its own 127.0.0.1 only;
 *                 // keeps `ssh -N -R 127.0.0.1:<tunnelPort>:127.0.0.1:22` open to relay-1 (nat.tunnelPort)
 *   const r2    = await lab.addHost('relay-2', { relay: true, behind: relay });  // relay chain
 *   await lab.addHosts(['e1', 'e2'], { behind: relay, shareNetns: 'grp' }); // several sshds in one netns (cheaper)
 *
 *   lab.clientKey           // private key file authorised on every host (user root)
 *   host.address/port/root  // sshd endpoint as the operator or its relay sees it; root = a temp dir for the node
 *   host.hostKey            // "ssh-ed25519 AAAA..." (pin it in spec.ssh.hostKey), host.fingerprint ("SHA256:...")
 *   host.netns              // namespace name, undefined for root-namespace hosts
 *   lab.nodeDoc(host, extra?)       // the Node YAML document for this host (role, address, ssh, via, tunnel, root)
 *   await lab.writeFleet(dir, { pin?: boolean, knownHosts?: boolean }) // fleet.yaml + nodes.yaml (+ known_hosts)
 *   await lab.execIn(host, argv)    // run a command in the host's namespace (e.g. nginx -t), returns {code,stdout,stderr}
 *   lab.spawnIn(host, argv)         // long-running process in the host's namespace (e.g. nginx), killed by close()
 *   await lab.http(host, { port: 80, path: '/', host: 'app.example.com' }) // real HTTP (curl) to host.address,
 *                                   // sent from the namespace its clients sit in (its relay's, for edge hosts) → {status, body}
 *   await lab.killSessions(host)    // SIGKILL the host's per-connection sshd processes (connection dropped mid-command)
 *   await lab.connectionsTo(host)   // established TCP connections to its sshd (counted in the namespace they come from)
 *   await lab.rekey(host)           // new host key + sshd restart (a "changed host key")
 *   await lab.stop(host) / lab.start(host)
 *
 * Addresses: root-namespace hosts use 127.0.1.<slot+1> ports 22000 + slot*30 + k; namespaces use
 * 10.231.<slot*8..slot*8+7>.x. A slot is taken per lab with an O_EXCL lock file, so labs in parallel
 * test files (and other helpers' tests) never collide. The root namespace gets an "unreachable"
 * route for 10.231.0.0/16, so nothing for those addresses ever leaves this machine, and has no
 * route into any relay's downstream subnet: only the relay's netns can reach its edge hosts.
 * Needs root, iproute2 and /usr/sbin/sshd (OpenSSH); creates /run/sshd if missing. `sshd: 'dropbear'`
 * needs Debian's dropbear-bin; `sshd: 'openssh-nosftp'` is OpenSSH without the sftp subsystem.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { TEST_DATA_DIR } from './data-dir.js';
import { listProcs, readCmdline, run, signal, sleep, SLOT_DIR, takeSlot, waitFor } from './lab-util.js';

export interface LabHost {
  name: string;
  role: 'core' | 'relay' | 'edge';
  address: string;
  port: number;
  root: string;
  dir: string;
  netns?: string;
  behind?: LabHost;
  relay: boolean;
  hostKey: string;
  fingerprint: string;
  /** For reverse-tunnel hosts: the port on the relay's 127.0.0.1 where the tunnel lands. */
  tunnelPort?: number;
  /** Internal: downstream subnet third octet and next free host number (relays only). */
  down?: { octet: number; next: number };
  sshd?: ChildProcess;
  server: 'openssh' | 'openssh-nosftp' | 'dropbear';
}

export interface AddHostOptions {
  relay?: boolean;
  behind?: LabHost;
  reverseTunnel?: boolean;
  /** Hosts with the same shareNetns (and the same `behind`) live in one namespace, each with its own address and sshd. */
  shareNetns?: string;
  /**
   * The SSH server: OpenSSH (default), OpenSSH without the sftp subsystem (a hardened config), or
   * dropbear as OpenWrt-class nodes run it, without an sftp-server (hidden in its mount namespace).
   */
  sshd?: 'openssh' | 'openssh-nosftp' | 'dropbear';
}

export type Lab = Awaited<ReturnType<typeof createLab>>;


export async function createLab() {
  await mkdir('/run/sshd', { recursive: true });
  const slot = await takeSlot();
  // Below a data prefix: the hosts' dirs are the fleet's release roots (values.ts).
  await mkdir(TEST_DATA_DIR, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(TEST_DATA_DIR, `ec-lab${slot}-`));
  await chmod(dir, 0o755); // nginx workers (nobody) must traverse into the node roots
  const clientKey = join(dir, 'client_ed25519');
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-test-client', '-f', clientKey]);
  const clientPub = await readFile(clientKey + '.pub', 'utf8');
  await run(['ip', 'route', 'replace', 'unreachable', '10.231.0.0/16']);
  const hosts: LabHost[] = [];
  const namespaces = new Set<string>();
  const shared = new Map<string, { netns: string; octet: number }>();
  const procs = new Set<ChildProcess>();
  let rootPorts = 0;
  let uplinks = 0;
  let subnets = 0;
  let nsCount = 0;
  const base = slot * 8;

  const execIn = async (h: LabHost | undefined, argv: string[], input?: string) => {
    const full = h?.netns ? ['ip', 'netns', 'exec', h.netns, ...argv] : argv;
    const r = await execa(full[0], full.slice(1), { reject: false, input, timeout: 60_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const spawnIn = (h: LabHost | undefined, argv: string[], logFile?: string): ChildProcess => {
    const full = h?.netns ? ['ip', 'netns', 'exec', h.netns, ...argv] : argv;
    const out = logFile ? openSync(logFile, 'a') : 'ignore';
    const p = spawn(full[0], full.slice(1), { stdio: ['ignore', out, out] });
    if (typeof out === 'number') closeSync(out);
    procs.add(p);
    p.on('exit', () => procs.delete(p));
    return p;
  };

  async function newNetns(): Promise<string> {
    const ns = `ec-s${slot}-n${nsCount++}`;
    await run(['ip', 'netns', 'add', ns]);
    namespaces.add(ns);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth from the root namespace (top-level relays) or from the upstream relay's bridge into ns. */
  async function uplink(ns: string, behind: LabHost | undefined): Promise<{ address: string }> {
    const a = `ec${slot}v${nsCount}a`;
    const b = `ec${slot}v${nsCount}b`;
    await run(['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    await run(['ip', 'link', 'set', b, 'netns', ns, 'name', 'up0']);
    if (!behind) {
      if (uplinks >= 60) throw new Error('lab: too many top-level relays');
      const k = uplinks++;
      const rootIp = `10.231.${base}.${4 * k + 1}`;
      const nsIp = `10.231.${base}.${4 * k + 2}`;
      await run(['ip', 'addr', 'add', `${rootIp}/30`, 'dev', a]);
      await run(['ip', 'link', 'set', a, 'up']);
      await run(['ip', '-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', 'up0']);
      await run(['ip', '-n', ns, 'link', 'set', 'up0', 'up']);
      return { address: nsIp };
    }
    const up = behind.down!;
    const ip = `10.231.${up.octet}.${up.next++}`;
    await run(['ip', 'link', 'set', a, 'netns', behind.netns!]);
    await run(['ip', '-n', behind.netns!, 'link', 'set', a, 'master', 'br0']);
    await run(['ip', '-n', behind.netns!, 'link', 'set', a, 'up']);
    await run(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'up0']);
    await run(['ip', '-n', ns, 'link', 'set', 'up0', 'up']);
    return { address: ip };
  }

  async function addHost(name: string, o: AddHostOptions = {}): Promise<LabHost> {
    if (o.behind && !o.behind.relay) throw new Error(`lab: ${o.behind.name} is not a relay`);
    const hdir = join(dir, name);
    await mkdir(join(hdir, 'root'), { recursive: true });
    let netns: string | undefined;
    let address: string;
    let port = 22;
    if (!o.behind && !o.relay) {
      if (rootPorts >= 30) throw new Error('lab: at most 30 root-namespace hosts');
      address = `127.0.1.${slot + 1}`;
      port = 22000 + slot * 30 + rootPorts++;
    } else if (o.shareNetns && shared.has(o.shareNetns + '|' + (o.behind?.name ?? ''))) {
      const s = shared.get(o.shareNetns + '|' + (o.behind?.name ?? ''))!;
      netns = s.netns;
      const up = o.behind!.down!;
      address = `10.231.${up.octet}.${up.next++}`;
      await run(['ip', '-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'up0']);
    } else {
      netns = await newNetns();
      address = (await uplink(netns, o.behind)).address;
      if (o.shareNetns) shared.set(o.shareNetns + '|' + (o.behind?.name ?? ''), { netns, octet: 0 });
    }
    const host: LabHost = { name, role: o.relay ? 'relay' : o.behind ? 'edge' : 'core', address, port, root: join(hdir, 'root'), dir: hdir, netns, behind: o.behind, relay: !!o.relay, hostKey: '', fingerprint: '', server: o.sshd ?? 'openssh' };
    if (host.server === 'dropbear' && (o.relay || o.reverseTunnel)) throw new Error('lab: dropbear hosts are plain edge or core hosts');
    if (o.relay) {
      if (o.shareNetns) throw new Error('lab: a relay needs its own namespace');
      if (subnets >= 7) throw new Error('lab: at most 7 relays');
      host.down = { octet: base + 1 + subnets++, next: 10 };
      await run(['ip', '-n', netns!, 'link', 'add', 'br0', 'type', 'bridge']);
      await run(['ip', '-n', netns!, 'addr', 'add', `10.231.${host.down.octet}.1/24`, 'dev', 'br0']);
      await run(['ip', '-n', netns!, 'link', 'set', 'br0', 'up']);
    }
    await writeFile(join(hdir, 'authorized_keys'), clientPub, { mode: 0o600 });
    await genHostKey(host);
    if (o.reverseTunnel) {
      if (!o.behind) throw new Error('lab: a reverse tunnel needs `behind`');
      host.tunnelPort = 22900 + hosts.filter((h) => h.tunnelPort).length;
    }
    await writeSshdConfig(host, !!o.reverseTunnel);
    await start(host);
    if (o.reverseTunnel) await openTunnel(host);
    hosts.push(host);
    return host;
  }

  async function genHostKey(h: LabHost): Promise<void> {
    const key = join(h.dir, 'ssh_host_ed25519_key');
    await rm(key, { force: true });
    await rm(key + '.pub', { force: true });
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', h.name, '-f', key]);
    const [type, b64] = (await readFile(key + '.pub', 'utf8')).trim().split(/\s+/);
    h.hostKey = `${type} ${b64}`;
    h.fingerprint = 'SHA256:' + createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '');
    if (h.server === 'dropbear') await run(['dropbearconvert', 'openssh', 'dropbear', key, key + '.dropbear']);
  }

  async function writeSshdConfig(h: LabHost, loopbackOnly: boolean): Promise<void> {
    // Relays also listen on their bridge, where reverse tunnels from their edge hosts dial in.
    const listen = loopbackOnly ? '127.0.0.1:22' : h.relay ? '0.0.0.0:22' : `${h.address}:${h.port}`;
    await writeFile(join(h.dir, 'sshd_config'), [
      `ListenAddress ${listen}`,
      `HostKey ${join(h.dir, 'ssh_host_ed25519_key')}`,
      `PidFile ${join(h.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(h.dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      ...(h.server === 'openssh-nosftp' ? [] : ['Subsystem sftp internal-sftp']),
      'LogLevel VERBOSE',
      // Debian's bash sources ~/.bashrc for ssh commands when SHLVL < 2. This machine's root
      // .bashrc runs `pyenv init` (0.2-0.9 s a command), which no edge node has: skip it.
      'SetEnv SHLVL=1',
      '',
    ].join('\n'));
  }

  async function start(h: LabHost): Promise<void> {
    const log = join(h.dir, 'sshd.log');
    await writeFile(log, '');
    const p = spawnIn(h, h.server === 'dropbear' ? await dropbearArgv(h) : ['/usr/sbin/sshd', '-D', '-e', '-f', join(h.dir, 'sshd_config')], log);
    h.sshd = p;
    const ready = h.server === 'dropbear' ? 'Not backgrounding' : 'Server listening';
    await waitFor(async () => (await readFile(log, 'utf8')).includes(ready), `sshd of ${h.name} to listen`, log, () => p.exitCode !== null);
  }

  /**
   * dropbear has no AuthorizedKeysFile setting and runs /usr/lib/sftp-server when it exists: in
   * its own mount namespace, root's home is the host's dir (authorized_keys, no .bashrc) and the
   * sftp-server is a file that cannot be executed, as on a node without one.
   */
  async function dropbearArgv(h: LabHost): Promise<string[]> {
    const home = join(h.dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await writeFile(join(home, '.ssh', 'authorized_keys'), clientPub, { mode: 0o600 });
    const noSftp = join(h.dir, 'no-sftp-server');
    await writeFile(noSftp, '', { mode: 0o644 });
    const listen = `${h.address}:${h.port}`;
    const key = join(h.dir, 'ssh_host_ed25519_key.dropbear');
    return ['unshare', '-m', 'sh', '-c', 'mount --bind "$1" /root && mount --bind "$2" /usr/lib/openssh/sftp-server && exec dropbear -F -E -p "$3" -r "$4" -P "$5"', 'dropbear-lab', home, noSftp, listen, key, join(h.dir, 'sshd.pid')];
  }

  async function stop(h: LabHost): Promise<void> {
    const p = h.sshd;
    if (!p || p.exitCode !== null) return;
    await killSessions(h);
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  }

  /** The per-connection sshd processes of this host's sshd (its children and their children). */
  function sessionPids(h: LabHost): number[] {
    if (!h.sshd?.pid) return [];
    // With `ip netns exec` the sshd master is a child of the spawned pid (exec replaces it, so usually the same pid).
    const children = (ppid: number) => listProcs().filter((p) => p.ppid === ppid).map((p) => p.pid);
    return children(h.sshd.pid);
  }

  /** Established TCP connections to the host's sshd, counted where they come from (root ns, or its relay's ns). */
  async function connectionsTo(h: LabHost): Promise<number> {
    const r = await execIn(h.behind, ['ss', '-Htn', 'state', 'established', 'dst', `${h.address}:${h.port}`]);
    return r.stdout.split('\n').filter((l) => l.trim()).length;
  }

  /**
   * A real HTTP request to the host's address, sent from where clients of that host sit: the root
   * namespace for root-namespace hosts and top-level relays, the relay's namespace for hosts
   * behind it (nothing else can route there). curl, bounded by a 10 s timeout.
   */
  async function http(h: LabHost, o: { port?: number; path?: string; host?: string; method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
    const url = `http://${h.address}:${o.port ?? 80}${o.path ?? '/'}`;
    const argv = ['curl', '-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', '-X', o.method ?? 'GET', ...(o.host ? ['-H', `Host: ${o.host}`] : []), ...(o.body !== undefined ? ['--data-binary', '@-'] : []), url];
    const r = await execIn(h.behind, argv, o.body);
    const i = r.stdout.lastIndexOf('\n');
    const status = Number(r.stdout.slice(i + 1));
    if (r.code !== 0 && !status) return { status: 0, body: r.stderr };
    return { status, body: r.stdout.slice(0, i) };
  }

  async function killSessions(h: LabHost): Promise<void> {
    for (const pid of sessionPids(h)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  async function openTunnel(h: LabHost): Promise<void> {
    const relay = h.behind!;
    // The relay as its downstream hosts see it: its bridge address. Its sshd listens on 0.0.0.0 for that.
    const relayIp = `10.231.${relay.down!.octet}.1`;
    const kh = join(h.dir, 'relay_known_hosts');
    await writeFile(kh, `${relayIp} ${relay.hostKey}\n`);
    const argv = ['ssh', '-N', '-i', clientKey, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${kh}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'ExitOnForwardFailure=yes', '-o', 'ServerAliveInterval=5', '-o', 'BatchMode=yes', '-R', `127.0.0.1:${h.tunnelPort}:127.0.0.1:22`, `root@${relayIp}`];
    const p = spawnIn(h, argv, join(h.dir, 'tunnel.log'));
    await waitFor(async () => (await execIn(relay, ['ss', '-Hltn', `sport = :${h.tunnelPort}`])).stdout.includes(`127.0.0.1:${h.tunnelPort}`), `reverse tunnel of ${h.name}`, join(h.dir, 'tunnel.log'), () => p.exitCode !== null);
  }

  function nodeDoc(h: LabHost, extra: { pin?: boolean; spec?: Record<string, unknown>; labels?: Record<string, string> } = {}): string {
    const via: string[] = [];
    for (let r = h.behind; r; r = r.behind) via.unshift(r.name);
    const spec: Record<string, unknown> = {
      role: h.role,
      address: h.tunnelPort ? `${h.name}.tunnel.test` : h.address,
      ssh: { user: 'root', port: h.tunnelPort ? 22 : h.port, ...(extra.pin ? { hostKey: h.hostKey } : {}) },
      root: h.root,
      ...(via.length ? { via } : {}),
      ...(h.tunnelPort ? { tunnel: 'reverse', tunnelPort: h.tunnelPort } : {}),
      ...extra.spec,
    };
    return `apiVersion: edgectl/v1\nkind: Node\nmetadata:\n  name: ${h.name}\n  labels: ${JSON.stringify(extra.labels ?? { lab: 'yes' })}\nspec: ${JSON.stringify(spec)}\n`;
  }

  /** known_hosts lines for the hosts, by the name edgectl looks up (`addr` or `[addr]:port`). */
  function knownHosts(list: LabHost[] = hosts): string {
    return list.map((h) => {
      const addr = h.tunnelPort ? `${h.name}.tunnel.test` : h.address;
      const port = h.tunnelPort ? 22 : h.port;
      return `${port === 22 ? addr : `[${addr}]:${port}`} ${h.hostKey}\n`;
    }).join('');
  }

  async function writeFleet(fleetDir: string, o: { pin?: boolean; knownHosts?: boolean; hosts?: LabHost[] } = {}): Promise<void> {
    const list = o.hosts ?? hosts;
    await mkdir(fleetDir, { recursive: true });
    await writeFile(join(fleetDir, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata:\n  name: lab\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n');
    await writeFile(join(fleetDir, 'nodes.yaml'), list.map((h) => nodeDoc(h, { pin: o.pin })).join('---\n'));
    if (o.knownHosts) await writeFile(join(fleetDir, 'known_hosts'), knownHosts(list));
  }

  async function rekey(h: LabHost): Promise<void> {
    await stop(h);
    await genHostKey(h);
    await start(h);
  }

  async function close(): Promise<void> {
    // Daemons started through a node's sshd (nginx, agents) outlive it: every process inside our
    // namespaces is ours, and in the root namespace ours name the lab's directory (nginx -p <root>).
    const strays = new Set<number>();
    for (const ns of namespaces) {
      const r = await execa('ip', ['netns', 'pids', ns], { reject: false });
      for (const pid of String(r.stdout).split('\n').filter(Boolean)) strays.add(Number(pid));
    }
    for (const p of listProcs()) if (p.pid !== process.pid && readCmdline(p.pid).includes(dir + '/')) strays.add(p.pid);
    for (const p of listProcs()) if (strays.has(p.ppid)) strays.add(p.pid);
    for (const pid of strays) signal(pid, 'SIGTERM');
    await sleep(strays.size ? 300 : 0);
    for (const pid of strays) signal(pid, 'SIGKILL');
    for (const p of [...procs]) {
      const gone = new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
      p.kill('SIGKILL');
      await Promise.race([gone, sleep(2000)]);
    }
    for (const ns of namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
    await rm(dir, { recursive: true, force: true });
    await unlink(join(SLOT_DIR, String(slot))).catch(() => {});
  }

  return {
    slot, dir, clientKey, hosts,
    addHost,
    addHosts: async (names: string[], o: AddHostOptions = {}) => {
      const out: LabHost[] = [];
      for (const n of names) out.push(await addHost(n, o));
      return out;
    },
    execIn, spawnIn, http, nodeDoc, knownHosts, writeFleet, killSessions, sessionPids, connectionsTo, rekey, stop, start, close,
  };
}

