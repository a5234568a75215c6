import { EdgectlError } from '../errors.js';
import { unsafePathMessage } from '../fleet/source.js';
import { UnsafeFileError } from '../safe-fs/regular-file.js';
import { appendKnownHost, blobType, entryMatches, fingerprint, keyLine, readKnownHosts, type KnownHostEntry } from './known-hosts.js';

/**
 * Host key policy for every hop (relays included): the node's pinned key, else the fleet
 * repo's known_hosts, else the user's. The first source that knows the host decides; an
 * unknown key is refused with its fingerprint unless first-seen keys may be recorded; a
 * changed key is refused always, and no option here can turn that off.
 *
 * Two rules stand above that order, because the fleet is written by others (a pull request)
 * while the user's known_hosts is the operator's own: a key marked `@revoked` in any of the
 * files is refused for every host, whatever pins or lists it; and where the operator's
 * known_hosts knows a host, every key the fleet pins for it must be one of the operator's,
 * or the connection is refused before it is made (EDGECTL_HOSTKEY_CONFLICT), naming both.
 */
export interface HostKeyTarget {
  node: string;
  /** Names looked up in known_hosts (`host` or `[host]:port`); the first is the one recorded. */
  names: string[];
  pinned?: string;
  /** How the hop is shown in messages, e.g. `relay-1 (10.0.0.1:22)`. */
  label: string;
}

export interface ObservedKey {
  node: string;
  name: string;
  fingerprint: string;
  keyLine: string;
  status: 'pinned' | 'known' | 'recorded';
  source: string;
}

interface Expectation {
  source: string;
  keys: KnownHostEntry[];
}

interface Revoked {
  key: Buffer;
  where: string;
}

const SERVER_HOST_KEY_ALGOS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
};

export class HostKeyStore {
  private cache = new Map<string, Promise<KnownHostEntry[]>>();
  private appending: Promise<void> = Promise.resolve();
  readonly observed: ObservedKey[] = [];

  constructor(private readonly opts: { fleetKnownHosts: string; userKnownHosts?: string; systemKnownHosts?: string; acceptNew: (node: string) => boolean }) {}

  /** The fleet's file is read without following a link (it is the fleet's to fake); the user's is theirs. */
  private file(path: string): Promise<KnownHostEntry[]> {
    let p = this.cache.get(path);
    if (!p) {
      const fleet = path === this.opts.fleetKnownHosts;
      p = readKnownHosts(path, { noFollow: fleet }).catch((e) => {
        if (!(e instanceof UnsafeFileError)) throw e;
        if (fleet) throw new EdgectlError('EDGECTL_FLEET_INVALID', `the fleet's ${unsafePathMessage('known_hosts', e.reason)}`, { cause: e });
        throw new EdgectlError('EDGECTL_KEY_FILE', `known_hosts ${e.message}`, { cause: e });
      });
      this.cache.set(path, p);
    }
    return p;
  }

  private sources(): string[] {
    return [this.opts.fleetKnownHosts, ...(this.opts.userKnownHosts ? [this.opts.userKnownHosts] : [])];
  }

  /**
   * Every `@revoked` key of every file, whatever host its line names: a revoked key is revoked.
   * The machine's own /etc/ssh/ssh_known_hosts counts too, for revocations only (an
   * administrator's revocation binds every user of the machine, edgectl included).
   */
  private async revocations(): Promise<Revoked[]> {
    const out: Revoked[] = [];
    for (const path of [...this.sources(), ...(this.opts.systemKnownHosts ? [this.opts.systemKnownHosts] : [])]) for (const e of await this.file(path)) if (e.marker === 'revoked') out.push({ key: e.key, where: `${path}:${e.line}` });
    return out;
  }

  private async known(path: string | undefined, t: HostKeyTarget): Promise<KnownHostEntry[]> {
    if (!path) return [];
    return (await this.file(path)).filter((e) => !e.marker && t.names.some((n) => entryMatches(e, n)));
  }

  async expect(t: HostKeyTarget): Promise<Expectation | undefined> {
    const revoked = await this.revocations();
    const user = await this.known(this.opts.userKnownHosts, t);
    let fromFleet: Expectation | undefined;
    if (t.pinned) {
      const [type, b64] = t.pinned.split(/\s+/);
      fromFleet = { source: `spec.ssh.hostKey of node ${t.node}`, keys: [{ names: '', keyType: type, key: Buffer.from(b64, 'base64'), line: 0 }] };
    } else {
      const keys = await this.known(this.opts.fleetKnownHosts, t);
      if (keys.length) fromFleet = { source: this.opts.fleetKnownHosts, keys };
    }
    if (!fromFleet) return user.length ? { source: this.opts.userKnownHosts!, keys: user } : undefined;
    for (const k of fromFleet.keys) {
      const r = revoked.find((x) => x.key.equals(k.key));
      if (r) throw new EdgectlError('EDGECTL_HOSTKEY_CHANGED', `${fromFleet.source} trusts ${shortType(k.keyType)} ${fingerprint(k.key)} for ${t.label}, but that key is marked @revoked in ${r.where}; refusing to connect`);
    }
    const foreign = user.length ? fromFleet.keys.filter((k) => !user.some((u) => u.key.equals(k.key))) : [];
    if (foreign.length) {
      throw new EdgectlError('EDGECTL_HOSTKEY_CONFLICT', `HOST KEY CONFLICT for ${t.label}: ${fromFleet.source} pins ${describeKeys(foreign)}, but your ${this.opts.userKnownHosts} has ${describeKeys(user)} for it. Refusing to connect: a change to the fleet must not re-pin a node silently`, {
        detail: `If the node was re-keyed, verify the new fingerprint out of band, then replace the old entry in ${this.opts.userKnownHosts} (\`ssh-keygen -R '${t.names[0]}'\`); if not, the fleet's pin is wrong.`,
      });
    }
    return fromFleet;
  }

  /** ssh2's serverHostKey list: only the types we hold a key for, so the server shows the one we can check. */
  algorithmsFor(exp: Expectation | undefined): string[] | undefined {
    if (!exp) return undefined;
    const algos = [...new Set(exp.keys.flatMap((k) => SERVER_HOST_KEY_ALGOS[normalType(k.keyType)] ?? []))];
    return algos.length ? algos : undefined;
  }

  /** Decides on the key a hop presented. Resolves when accepted, rejects with a coded error otherwise. */
  async verify(t: HostKeyTarget, exp: Expectation | undefined, blob: Buffer): Promise<void> {
    const fp = fingerprint(blob);
    const line = keyLine(blob);
    const note = (status: ObservedKey['status'], source: string) => this.observed.push({ node: t.node, name: t.names[0], fingerprint: fp, keyLine: line, status, source });
    const revoked = (await this.revocations()).find((r) => r.key.equals(blob));
    if (revoked) throw new EdgectlError('EDGECTL_HOSTKEY_CHANGED', `host key of ${t.label} is marked @revoked in ${revoked.where} (${fp}); refusing to connect, and it is never recorded`);
    if (exp) {
      if (exp.keys.some((k) => k.key.equals(blob))) return void note(exp.source.startsWith('spec.') ? 'pinned' : 'known', exp.source);
      const was = describeKeys(exp.keys);
      throw new EdgectlError('EDGECTL_HOSTKEY_CHANGED', `HOST KEY CHANGED for ${t.label}: it presents ${shortType(blobType(blob))} ${fp}, but ${exp.source} has ${was}. Refusing to connect: this is what a man-in-the-middle looks like`, {
        detail: `If the node was reinstalled, verify ${fp} out of band, then remove the old entry from ${exp.source} and run \`edgectl trust ${t.node}\`.`,
      });
    }
    if (this.opts.acceptNew(t.node)) {
      await this.record(t.names[0], line);
      return void note('recorded', this.opts.fleetKnownHosts);
    }
    throw new EdgectlError('EDGECTL_HOSTKEY_UNKNOWN', `host key of ${t.label} is not known: ${shortType(blobType(blob))} ${fp} (verify it, then \`edgectl trust ${t.node}\` or --accept-new)`, {
      detail: `Pinned in neither spec.ssh.hostKey nor ${this.opts.fleetKnownHosts}${this.opts.userKnownHosts ? ` nor ${this.opts.userKnownHosts}` : ''}.`,
      hint: `Verify ${fp} out of band (on the node: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run \`edgectl trust ${t.node}\`, or rerun with --accept-new to record first-seen keys in the fleet's known_hosts.`,
    });
  }

  /** Appends to the fleet's known_hosts, one writer at a time, never twice for the same name and key. */
  private record(name: string, line: string): Promise<void> {
    const path = this.opts.fleetKnownHosts;
    const run = this.appending.then(async () => {
      const blob = Buffer.from(line.split(' ')[1], 'base64');
      const existing = await readKnownHosts(path, { noFollow: true });
      const same = existing.filter((e) => !e.marker && entryMatches(e, name));
      if (same.some((e) => e.key.equals(blob))) return;
      if (same.length) throw new EdgectlError('EDGECTL_HOSTKEY_CHANGED', `${path} already holds a different key for ${name}; not overwriting it`);
      await appendKnownHost(path, name, line);
      this.cache.delete(path);
    });
    this.appending = run.catch(() => {});
    return run;
  }
}

function describeKeys(keys: KnownHostEntry[]): string {
  return keys.map((k) => `${shortType(k.keyType)} ${fingerprint(k.key)}${k.line ? ` (line ${k.line})` : ''}`).join(', ');
}

function normalType(t: string): string {
  return t === 'rsa-sha2-256' || t === 'rsa-sha2-512' ? 'ssh-rsa' : t;
}

function shortType(t: string): string {
  const m: Record<string, string> = { 'ssh-ed25519': 'ED25519', 'ssh-rsa': 'RSA' };
  return m[t] ?? (t.startsWith('ecdsa') ? 'ECDSA' : t);
}
