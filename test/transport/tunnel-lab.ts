import { type ChildProcess } from 'node:child_process';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client, ConnectConfig } from 'ssh2';
import { createLab, type Lab, type LabHost } from '../helpers/hosts.js';
import { listProcs, readCmdline, run, signal, sleep, withDescendants } from '../helpers/lab-util.js';
import { REPO } from '../helpers/paths.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet } from '../../src/lib/render/index.js';
import { renderTunnelSshdConfig } from '../../src/lib/render/tunnel-keys.js';
import type { AgentConfig } from '../../src/lib/bundle/agent-json.js';

/**
 * The reverse-tunnel lab: a relay on real sshd with the rendered tunnel drop-in and keys, and a
 * NAT'd node (its sshd on its own 127.0.0.1, no inbound route) whose tunnel the bundled agent
 * holds. The lab's hand-made `ssh -R` is dropped once the node is up: only the agent's tunnel
 * remains.
 *
 * The machine gets no new account: the relay's one sshd also listens on TUNNEL_PORT, where the
 * rendered drop-in applies to root (`Match User root LocalPort …`, root's real shell included, so a
 * shell that is not refused would run), and on KEYS_ONLY_PORT, where only the rendered
 * authorized_keys applies (what the key options alone allow). Port 22 stays the lab's, for edgectl.
 */
export const TUNNEL_USER = 'root';
export const TUNNEL_PORT = 2222;
export const KEYS_ONLY_PORT = 2223;

export interface TunnelLab {
  lab: Lab;
  relay: LabHost;
  nat: LabHost;
  fleet: string;
  home: string;
  /** The NAT'd node's tunnel key (private) and a second node's, both with their public halves in the fleet. */
  keyA: string;
  keyB: string;
  /** edge-b: in the fleet only (no host), with keyB and the port after nat's. */
  portB: number;
  agentConfig: string;
  agent?: ChildProcess;
  startAgent(): ChildProcess;
  stopAgent(): Promise<void>;
  /** The node agent's /status, asked inside the node's namespace with its admin token. */
  status(): Promise<any>;
  /**
   * The relay's sshd stopped with every session it holds: OpenSSH's per-connection monitor and its
   * unprivileged child both hold the socket, and the lab's stop() kills only the first (as
   * `systemctl restart ssh` keeps sessions alive); a reboot or crash of the relay drops them all.
   */
  stopRelay(): Promise<void>;
  /** Whether something listens on the relay's 127.0.0.1:port. */
  listening(port: number): Promise<boolean>;
  /** Renders the fleet and installs the relay's tunnel/authorized_keys where the drop-in reads it. */
  installRelayKeys(): Promise<string>;
  close(): Promise<void>;
}

async function keygen(path: string, comment: string): Promise<string> {
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return (await readFile(path + '.pub', 'utf8')).trim().split(' ').slice(0, 2).join(' ');
}

export async function createTunnelLab(o: { backoffBaseMs?: number; backoffCapMs?: number; keepaliveIntervalMs?: number; clientAlive?: [number, number] } = {}): Promise<TunnelLab> {
  const lab = await createLab();
  const relay = await lab.addHost('relay-1', { relay: true });
  const nat = await lab.addHost('edge-nat', { behind: relay, reverseTunnel: true });
  // The lab's own `ssh -R` goes: its session on the relay is killed and the ssh client exits.
  await lab.killSessions(relay);
  for (let i = 0; i < 100 && (await listeningOn(lab, relay, nat.tunnelPort!)); i++) await sleep(50);
  // The node dials the relay's address, as the fleet has it: a default route through its bridge.
  await lab.execIn(nat, ['ip', 'route', 'add', 'default', 'via', `10.231.${relay.down!.octet}.1`]);

  const fleet = join(lab.dir, 'fleet');
  const home = join(lab.dir, 'home');
  await mkdir(home, { recursive: true });
  await mkdir(join(nat.root, 'secrets'), { recursive: true, mode: 0o700 });
  const keyA = join(nat.root, 'secrets', 'tunnel-key');
  const pubA = await keygen(keyA, 'edge-nat');
  const keyB = join(lab.dir, 'key-b');
  const pubB = await keygen(keyB, 'edge-b');
  const portB = nat.tunnelPort! + 1;
  await lab.writeFleet(fleet, { pin: true, hosts: [relay] });
  const docB = `apiVersion: edgectl/v1\nkind: Node\nmetadata:\n  name: edge-b\nspec: ${JSON.stringify({ role: 'edge', address: 'edge-b.tunnel.test', ssh: { user: 'root' }, root: join(lab.dir, 'edge-b-root'), via: ['relay-1'], tunnel: 'reverse', tunnelPort: portB, tunnelKey: `${pubB} edge-b` })}\n`;
  await writeFile(join(fleet, 'nodes.yaml'), [lab.nodeDoc(relay, { pin: true }), lab.nodeDoc(nat, { pin: true, spec: { tunnelKey: `${pubA} edge-nat` } }), docB].join('---\n'));

  // The relay reads tunnel keys through the rendered drop-in (the operator's one-time install).
  let dropIn = renderTunnelSshdConfig(relay.root, TUNNEL_USER).toString().replace(`Match User ${TUNNEL_USER}`, `Match User ${TUNNEL_USER} LocalPort ${TUNNEL_PORT}`);
  if (o.clientAlive) dropIn = dropIn.replace('ClientAliveInterval 10', `ClientAliveInterval ${o.clientAlive[0]}`).replace('ClientAliveCountMax 3', `ClientAliveCountMax ${o.clientAlive[1]}`);
  await writeFile(join(relay.dir, 'edgectl-tunnel.conf'), dropIn);
  await appendFile(join(relay.dir, 'sshd_config'), [
    `ListenAddress 0.0.0.0:${TUNNEL_PORT}`,
    `ListenAddress 0.0.0.0:${KEYS_ONLY_PORT}`,
    `Include ${join(relay.dir, 'edgectl-tunnel.conf')}`,
    `Match LocalPort ${KEYS_ONLY_PORT}`,
    `  AuthorizedKeysFile ${join(relay.root, 'current', 'tunnel', 'authorized_keys')}`,
    '',
  ].join('\n'));
  await lab.stop(relay);
  await lab.start(relay);

  const agentConfig = join(lab.dir, 'edge-nat-agent.json');
  const t: TunnelLab = {
    lab, relay, nat, fleet, home, keyA, keyB, portB, agentConfig,
    async installRelayKeys() {
      const loaded = await loadFleet(fleet);
      const bundles = await renderFleet(loaded, { edgectlVersion: 'test' });
      const file = (node: string, path: string) => bundles.find((b) => b.node === node)!.files.find((f) => f.path === path)!.data;
      const keys = file('relay-1', 'tunnel/authorized_keys');
      await mkdir(join(relay.root, 'current', 'tunnel'), { recursive: true });
      await chmod(relay.root, 0o755);
      await writeFile(join(relay.root, 'current', 'tunnel', 'authorized_keys'), keys, { mode: 0o644 });
      // The node's agent.json as rendered, but for the lab's tunnel user and port, at the test's pace.
      const cfg = JSON.parse(file('edge-nat', 'agent/agent.json').toString()) as AgentConfig;
      cfg.tunnel = { ...cfg.tunnel!, user: TUNNEL_USER, port: TUNNEL_PORT, keepaliveIntervalMs: o.keepaliveIntervalMs ?? 1000, backoffBaseMs: o.backoffBaseMs ?? 200, backoffCapMs: o.backoffCapMs ?? 2000 };
      cfg.heartbeatSeconds = 0;
      await writeFile(agentConfig, JSON.stringify(cfg, null, 2));
      return keys.toString();
    },
    startAgent() {
      t.agent = lab.spawnIn(nat, [process.execPath, join(REPO, 'dist/agent/edgectl-agent.cjs'), '--root', nat.root, '--config', agentConfig, '--log-level', 'debug'], join(nat.dir, 'agent.log'));
      return t.agent;
    },
    async stopAgent() {
      const p = t.agent;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([gone, sleep(5000)]);
      t.agent = undefined;
    },
    async status() {
      const token = (await readFile(join(nat.root, 'spool', 'admin-token'), 'utf8')).trim();
      const r = await lab.execIn(nat, ['curl', '-sS', '-m', '5', '-H', `Authorization: Bearer ${token}`, 'http://127.0.0.1:7312/status']);
      return JSON.parse(r.stdout);
    },
    async stopRelay() {
      const root = relay.sshd?.pid;
      const tree = withDescendants(listProcs(), root ? [root] : []);
      if (root) tree.delete(root);
      for (const pid of tree) signal(pid, 'SIGKILL');
      await lab.stop(relay);
      // A node that reconnected while the master was still up holds a session the master's exit
      // leaves alive (re-parented): every sshd left in the relay's namespace is one of those.
      const left = await lab.execIn(undefined, ['ip', 'netns', 'pids', relay.netns!]);
      for (const pid of left.stdout.split('\n').filter(Boolean).map(Number)) if (readCmdline(pid).startsWith('sshd')) signal(pid, 'SIGKILL');
    },
    listening: (port) => listeningOn(lab, relay, port),
    close: async () => {
      await t.stopAgent();
      await lab.close();
    },
  };
  return t;
}

async function listeningOn(lab: Lab, relay: LabHost, port: number): Promise<boolean> {
  return (await lab.execIn(relay, ['ss', '-Hltn', `sport = :${port}`])).stdout.includes(`127.0.0.1:${port}`);
}

/** Polls until f() is true; returns the ms it took, or throws after timeoutMs. */
export async function until(f: () => Promise<boolean>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  while (!(await f().catch(() => false))) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
  return Date.now() - t0;
}

/** An ssh2 connection to the relay as the tunnel user with `key` (from here: the relay is reachable from the root namespace). */
export async function relayClient(t: TunnelLab, key: string, extra: Partial<ConnectConfig> = {}, port = TUNNEL_PORT): Promise<Client> {
  const { Client } = await import('ssh2');
  const c = new Client();
  const keyData = await readFile(key);
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('error', reject);
    c.connect({
      host: t.relay.address,
      port,
      username: TUNNEL_USER,
      authHandler: [{ type: 'publickey', username: TUNNEL_USER, key: keyData }] as never,
      hostVerifier: (blob: Buffer) => blob.equals(Buffer.from(t.relay.hostKey.split(' ')[1], 'base64')),
      readyTimeout: 10_000,
      ...extra,
    });
  });
  return c;
}
