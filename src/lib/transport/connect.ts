import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EdgectlError, isEdgectlError } from '../errors.js';
import { readRegularFile, UnsafeFileError } from '../safe-fs/regular-file.js';
import { prepareWriteDir } from '../safe-fs/write-dir.js';
import { silentLogger, type Logger } from '../logger.js';
import { resolvedNodes, type FleetModel, type ResolvedNode } from '../fleet/model.js';
import { HostKeyStore, type ObservedKey } from './host-keys.js';
import { hostName } from './known-hosts.js';
import { LocalTransport } from './local.js';
import { ConnectionPool } from './pool.js';
import { expandHome, loadSshConfig, lookupSshConfig } from './ssh-config.js';
import type { Hop } from './ssh-conn.js';
import { SshTransport } from './ssh.js';
import type { Transport } from './types.js';

export interface ConnectorOptions {
  model: FleetModel;
  /** The fleet repo: its known_hosts (if any) is checked before the user's, and --accept-new records there. */
  fleetRoot: string;
  /** Key files from --identity, tried before the fleet's and the user's defaults. */
  identity?: string[];
  /** Record first-seen host keys in <fleetRoot>/known_hosts. Never skips a changed key. */
  acceptNew?: boolean;
  /** Record first-seen keys only for these nodes (what `edgectl trust NODE` does). */
  acceptNewFor?: string[];
  /** Embedded default: every node is a local directory <localRoot>/<node>. No SSH at all. */
  localRoot?: string;
  connectTimeoutMs?: number;
  /** Default timeout of each exec (override per call with ExecOptions.timeoutMs). */
  execTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Extra connection attempts after the first, with backoff (0.25 s, 1 s, 4 s). */
  connectRetries?: number;
  /** Session channels per connection (sshd's MaxSessions defaults to 10). */
  maxChannels?: number;
  logger?: Logger;
  /** Defaults: ~/.ssh/known_hosts, ~/.ssh/config, $SSH_AUTH_SOCK. Tests point them elsewhere. */
  userKnownHosts?: string | false;
  /** The machine's known_hosts, read for `@revoked` lines only (default /etc/ssh/ssh_known_hosts; false: none). */
  systemKnownHosts?: string | false;
  sshConfig?: string | false;
  agentSocket?: string | false;
}

export interface Connector {
  /** A transport to the node; rejects with a coded EdgectlError naming the hop that failed. */
  open(nodeName: string): Promise<Transport>;
  /** Closes every pooled connection (relays included). */
  close(): Promise<void>;
  /**
   * From now on a node's connection stays open when its transport is closed, until close():
   * a run that plans and then applies connects to each node once (plan's connection is apply's).
   */
  keepOpen(): void;
  stats(): { handshakes: number; byHost: Record<string, number>; open: number };
  /** Host keys seen in this run (what `edgectl trust` reports). */
  hostKeys(): ObservedKey[];
  /** How a node is reached, for plans: ['relay-1', 'node'] (local mode: ['local']). */
  route(nodeName: string): string[];
}

export function createConnector(opts: ConnectorOptions): Connector {
  const logger = opts.logger ?? silentLogger;
  const nodes = resolvedNodes(opts.model);
  // Callers select their nodes first (nodes/select.ts, which names an unknown one to the user).
  const find = (name: string): ResolvedNode => {
    const n = nodes.get(name);
    if (!n) throw new EdgectlError('EDGECTL_INTERNAL', `the connector was asked for node "${name}", which is not in its fleet model`);
    return n;
  };
  if (opts.localRoot !== undefined) return localConnector(opts.localRoot, opts.fleetRoot, find, opts.execTimeoutMs);

  const acceptFor = new Set(opts.acceptNewFor ?? []);
  const hostKeys = new HostKeyStore({
    fleetKnownHosts: join(opts.fleetRoot, 'known_hosts'),
    userKnownHosts: opts.userKnownHosts === false ? undefined : (opts.userKnownHosts ?? join(homedir(), '.ssh', 'known_hosts')),
    systemKnownHosts: opts.systemKnownHosts === false ? undefined : (opts.systemKnownHosts ?? '/etc/ssh/ssh_known_hosts'),
    acceptNew: (node) => opts.acceptNew === true || acceptFor.has(node),
  });
  const sshConfig = opts.sshConfig === false ? [] : loadSshConfig(opts.sshConfig);
  const agent = opts.agentSocket === false ? undefined : (opts.agentSocket ?? process.env.SSH_AUTH_SOCK);
  const keys = new KeyCache(logger);
  const specs = new Map(opts.model.nodes.map((n) => [n.name, n.spec]));
  const userIdentities = defaultIdentities();
  const explicitSsh = (name: string) => {
    const spec = specs.get(name)!;
    const d = opts.model.fleet.spec.defaults?.ssh;
    return { user: spec.ssh?.user ?? d?.user, port: spec.ssh?.port ?? d?.port };
  };

  const hopFor = (n: ResolvedNode, forwardTo?: { host: string; port: number }): Hop => {
    const cfg = lookupSshConfig(sshConfig, n.address);
    const explicit = explicitSsh(n.name);
    // Explicit fleet settings win over ~/.ssh/config, which wins over edgectl's defaults.
    const host = cfg.hostName ?? n.address;
    const port = explicit.port ?? cfg.port ?? n.ssh.port;
    const user = explicit.user ?? cfg.user ?? n.ssh.user;
    const identities = [...new Set([...(opts.identity ?? []), ...(n.ssh.identityFile ? [expandHome(n.ssh.identityFile)] : []), ...cfg.identityFiles, ...userIdentities])];
    const names = [hostName(host, port), ...(host !== n.address ? [hostName(n.address, port)] : [])];
    return { node: n.name, host: forwardTo?.host ?? host, port: forwardTo?.port ?? port, user, identities, names, pinned: n.ssh.hostKey, label: `${n.name} (${host}:${port})` };
  };

  const route = (name: string): Hop[] => {
    const n = find(name);
    const hops = n.via.map((r) => hopFor(find(r)));
    if (n.tunnel === 'reverse') {
      if (!n.tunnelPort) throw new EdgectlError('EDGECTL_FLEET_INVALID', `node ${name} has tunnel: reverse but no spec.tunnelPort`);
      // The node's tunnel lands on its last relay's loopback.
      const relay = n.via[n.via.length - 1];
      hops.push({
        ...hopFor(n, { host: '127.0.0.1', port: n.tunnelPort }),
        label: `${n.name} (reverse tunnel at 127.0.0.1:${n.tunnelPort} on ${relay})`,
        hint: tunnelHint(n.name, relay, n.tunnelPort, n.ssh.port),
      });
    } else {
      hops.push(hopFor(n));
    }
    return hops;
  };

  const pool = new ConnectionPool({
    hostKeys,
    auth: async (hop) => {
      const methods: unknown[] = agent ? [{ type: 'agent', username: hop.user, agent }] : [];
      for (const f of hop.identities) {
        const key = await keys.get(f);
        if (key) methods.push({ type: 'publickey', username: hop.user, key });
      }
      return methods;
    },
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 15_000,
    retries: opts.connectRetries ?? 2,
    maxChannels: opts.maxChannels ?? 8,
    logger,
  });

  return {
    async open(nodeName) {
      const hops = route(nodeName);
      const conn = await pool.acquire(hops).catch((e: unknown) => {
        throw tunnelDown(find(nodeName), e);
      });
      return new SshTransport(nodeName, find(nodeName).root, conn, () => pool.release(hops), { execTimeoutMs: opts.execTimeoutMs });
    },
    close: () => pool.closeAll(),
    keepOpen: () => pool.keepOpen(),
    stats: () => pool.stats(),
    hostKeys: () => [...hostKeys.observed],
    route: (nodeName) => route(nodeName).map((h) => h.node),
  };
}

function tunnelHint(node: string, relay: string, port: number, sshPort: number): string {
  return `${node}'s agent holds its tunnel (agent.json \`tunnel\`): look at the \`tunnel\` part of its /status on the node, and at \`ss -ltn\` on ${relay}; without the agent, \`ssh -N -R 127.0.0.1:${port}:127.0.0.1:${sshPort} ${relay}\` holds the same tunnel (see docs/transport.md).`;
}

/**
 * A reverse node whose relay has nothing listening on the tunnel port is not a network timeout:
 * the node's tunnel is down (its link, its agent, or the relay refusing its key or port). Said so,
 * so that plan's "unreachable" reads "tunnel down".
 */
function tunnelDown(n: ResolvedNode, e: unknown): unknown {
  if (n.tunnel !== 'reverse' || !isEdgectlError(e) || e.code !== 'EDGECTL_TRANSPORT') return e;
  const relay = n.via[n.via.length - 1];
  const m = e.message.indexOf(`cannot open a connection to 127.0.0.1:${n.tunnelPort}:`);
  if (m < 0) return e;
  const cause = e.message.slice(m + `cannot open a connection to 127.0.0.1:${n.tunnelPort}:`.length).trim();
  return new EdgectlError('EDGECTL_TRANSPORT', `${n.name} (reverse tunnel at 127.0.0.1:${n.tunnelPort} on ${relay}): tunnel down: nothing listens on 127.0.0.1:${n.tunnelPort} of ${relay} (${cause})`, { cause: e, hint: e.hint ?? tunnelHint(n.name, relay, n.tunnelPort!, n.ssh.port) });
}

function localConnector(localRoot: string, fleetRoot: string, find: (n: string) => ResolvedNode, execTimeoutMs?: number): Connector {
  return {
    async open(nodeName) {
      find(nodeName);
      const root = join(localRoot, nodeName);
      // The demo's local nodes live in the fleet (.edgectl/nodes): no link of the fleet's on the way.
      await prepareWriteDir(root, fleetRoot, `node ${nodeName}`);
      return new LocalTransport(nodeName, root, { execTimeoutMs });
    },
    async close() {},
    keepOpen() {},
    stats: () => ({ handshakes: 0, byHost: {}, open: 0 }),
    hostKeys: () => [],
    route: () => ['local'],
  };
}

function defaultIdentities(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)).filter((p) => existsSync(p));
}

/** An OpenSSH private key is a few KiB (RSA 16384 is about 12 KiB); anything bigger is not one. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Key files read once per run; missing, unreadable or passphrase-protected keys are skipped
 * with a warning. A path that is not a regular file of at most 64 KiB (`identityFile:
 * /dev/zero`, a FIFO, a directory) is an error, found before a byte is read: the fleet names
 * these paths, and such a file would read forever or block.
 */
class KeyCache {
  private readonly keys = new Map<string, Promise<Buffer | undefined>>();
  constructor(private readonly logger: Logger) {}

  get(path: string): Promise<Buffer | undefined> {
    let p = this.keys.get(path);
    if (!p) this.keys.set(path, (p = this.load(path)));
    return p;
  }

  private async load(path: string): Promise<Buffer | undefined> {
    // ssh2 is CommonJS: Node's ESM loader exposes `Client` as a named export but not `utils`.
    const ssh2 = await import('ssh2');
    const utils = ssh2.utils ?? (ssh2 as unknown as { default: typeof ssh2 }).default.utils;
    try {
      const key = readRegularFile(path, { maxBytes: MAX_KEY_FILE_BYTES });
      const parsed = utils.parseKey(key);
      if (parsed instanceof Error) {
        this.logger.warn('skipping an identity file ssh2 cannot use (passphrase-protected keys belong in ssh-agent)', { path, error: parsed.message });
        return undefined;
      }
      return key;
    } catch (e) {
      if (e instanceof UnsafeFileError) throw new EdgectlError('EDGECTL_KEY_FILE', `identity file ${e.message}; refusing to read it as a key`, { cause: e });
      this.logger.warn('cannot read identity file', { path, error: (e as Error).message });
      return undefined;
    }
  }
}
