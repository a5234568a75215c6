import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The node farm: one real sshd per node on its own loopback address (127.0.4.i:22, then
 * 127.0.5.x past 254), each with its own host key, config and log. A root-only, bench-only
 * setup: `PermitRootLogin prohibit-password`, the bench client key in authorized_keys,
 * `MaxStartups`/`MaxSessions` raised so neither edgectl nor Ansible is throttled by sshd.
 */
export interface FarmNode {
  index: number;
  name: string;
  address: string;
  /** "ssh-ed25519 AAAA…" without comment, for spec.ssh.hostKey and known_hosts. */
  hostKey: string;
  dir: string;
}

export interface Farm {
  nodes: FarmNode[];
  clientKey: string;
  knownHosts: string;
  sshdPids: number[];
  stop(): Promise<void>;
}

export function nodeAddress(i: number): string {
  // 127.0.4.1 .. 127.0.4.254, then 127.0.5.1 ..
  const block = 4 + Math.floor((i - 1) / 254);
  const host = ((i - 1) % 254) + 1;
  return `127.0.${block}.${host}`;
}

export const nodeName = (i: number) => `edge-${String(i).padStart(3, '0')}`;

async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function sshdConfig(n: FarmNode, authorizedKeys: string): string {
  return [
    `ListenAddress ${n.address}:22`,
    `HostKey ${n.dir}/ssh_host_ed25519_key`,
    `PidFile ${n.dir}/sshd.pid`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'MaxStartups 300',
    'MaxSessions 50',
    'PrintMotd no',
    'UseDNS no',
    'LogLevel INFO',
    'Subsystem sftp internal-sftp',
    // A plain node shell: sshd runs commands through root's bash, which sources ~/.bashrc, and
    // on this build box that is a developer's (pyenv init: a few hundred ms of CPU per session).
    // An edge node has none of that, so sessions get an empty home of their own.
    `SetEnv HOME=${n.dir}/home`,
    '',
  ].join('\n');
}

/** Resolves once `host:22` answers with an SSH banner, or rejects after `timeoutMs`. */
async function waitForBanner(host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port: 22 });
      const done = (v: boolean) => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(1000, () => done(false));
      s.once('data', (d) => done(d.toString().startsWith('SSH-')));
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${host}:22 did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when something already answers on host:22 (another farm, or a real sshd). */
function listening(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: 22 });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** `offset` shifts the addresses (node i gets nodeAddress(offset + i)), so a small run can sit beside a big one. */
export async function startFarm(tmp: string, count: number, log: (s: string) => void, offset = 0): Promise<Farm> {
  const farmDir = path.join(tmp, 'farm');
  await mkdir(farmDir, { recursive: true });
  // sshd refuses to start without its privilege-separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const clientKey = path.join(farmDir, 'client_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-bench', '-f', clientKey]);
  const authorizedKeys = path.join(farmDir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`), { mode: 0o600 });

  const indices = Array.from({ length: count }, (_, k) => k + 1);
  const nodes = await pool(indices, 8, async (i) => {
    const dir = path.join(farmDir, nodeName(i));
    await mkdir(path.join(dir, 'home'), { recursive: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', `${dir}/ssh_host_ed25519_key`]);
    const pub = (await readFile(`${dir}/ssh_host_ed25519_key.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const n: FarmNode = { index: i, name: nodeName(i), address: nodeAddress(offset + i), hostKey: pub, dir };
    await writeFile(`${dir}/sshd_config`, sshdConfig(n, authorizedKeys));
    return n;
  });

  // An address already taken would make us measure someone else's sshd (edgectl would refuse its host key).
  const taken = (await pool(nodes, 32, async (n) => ((await listening(n.address)) ? n.address : ''))).filter(Boolean);
  if (taken.length) throw new Error(`something already listens on port 22 of ${taken.slice(0, 5).join(', ')}${taken.length > 5 ? ` and ${taken.length - 5} more` : ''}: is another benchmark running? (use --offset to shift the addresses)`);

  const knownHosts = path.join(farmDir, 'known_hosts');
  await writeFile(knownHosts, nodes.map((n) => `${n.address} ${n.hostKey}\n`).join(''));

  const children: ChildProcess[] = [];
  const sshdPids: number[] = [];
  for (const n of nodes) {
    const c = spawn('/usr/sbin/sshd', ['-D', '-f', `${n.dir}/sshd_config`, '-E', `${n.dir}/sshd.log`], { stdio: 'ignore' });
    c.on('error', (e) => log(`sshd for ${n.name} failed to start: ${e.message}`));
    children.push(c);
    if (c.pid) sshdPids.push(c.pid);
  }
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  };
  try {
    await pool(nodes, 32, (n) => waitForBanner(n.address, 20_000));
  } catch (e) {
    await stop();
    throw e;
  }
  log(`farm: ${count} sshd up (${nodes[0].address} .. ${nodes[nodes.length - 1].address})`);
  return { nodes, clientKey, knownHosts, sshdPids, stop };
}
