import { appendFile, copyFile, cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApps, writeTestFleet, type TestApp } from '../apply/helpers.js';
import { cli, json } from '../helpers/cli.js';
import { bootNode, type NspawnNode } from '../helpers/nspawn.js';
import { REPO } from '../helpers/paths.js';

/**
 * Issue 16 end to end, on real systemd nodes (Debian bookworm under systemd-nspawn, each in a
 * network namespace of its own): a relay r1 on its real sshd, and a node n1 that nobody can
 * reach (nft in its namespace drops every connection that does not start inside it), linked to
 * the relay only by a veth pair of its own. n1 is installed from `bootstrap --pack` (the archive
 * copied into its file system: the USB stick), its agent opens the tunnel, edgectl applies through
 * it, a bootstrap through it rotates the packed key and credential (the relay then refuses the
 * packed key), the node's link to the relay is cut and restored, and a second apply works.
 * An agent upgrade through the tunnel (and a build that crashes at start, rolled back) reports its
 * outcome at once, the relay's sshd killed and started again: the tunnel comes back.
 * Forged tunnels (another key for this port, this key for another port) are test/transport/tunnel.test.ts's.
 */
const ROOT = '/srv/edgectl';
const DOMAIN = 'www.pack.example';
const TUNNEL_PORT = 2204;
let dir: string;
let fleet: string;
let home: string;
let key: string;
let relay: NspawnNode;
let node: NspawnNode;
/** The node's end and the relay's end of the veth pair between their namespaces. */
let nodeLinkIp: string;
let relayLinkIp: string;

const edgectl = (args: string[], env?: Record<string, string>) => cli([...args, '--fleet', fleet], { home, env, timeout: 240_000 });
const app = (html: string): TestApp[] => [{ name: 'web', domain: DOMAIN, nodes: ['n1'], html }];
async function commit(msg: string): Promise<void> {
  await execa('git', ['-C', fleet, 'add', '-A']);
  await execa('git', ['-C', fleet, '-c', 'user.email=t@t.example', '-c', 'user.name=t', 'commit', '-qm', msg]);
}
const onNode = async (argv: string[]) => (await node.exec(argv)).stdout.trim();
async function served(): Promise<string> {
  const r = await node.inNetns(['curl', '-sS', '--max-time', '3', '-H', `Host: ${DOMAIN}`, `http://${node.address}/`]);
  return r.code === 0 ? r.stdout : `curl exit ${r.code}: ${r.stderr}`;
}
/** The node agent's /status (asked inside the node's namespace with its admin token). */
async function agentStatus(): Promise<{ tunnel?: { state: string; reconnects: number } }> {
  const conf = JSON.parse(await onNode(['cat', `${ROOT}/current/agent/agent.json`])) as { admin: string; dataDir: string };
  const token = await onNode(['cat', `${conf.dataDir}/admin-token`]);
  const r = await node.inNetns(['curl', '-sS', '--max-time', '3', '-H', `Authorization: Bearer ${token}`, `http://${conf.admin}/status`]);
  return JSON.parse(r.stdout || '{}');
}
async function until(f: () => Promise<boolean>, what: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await f().catch(() => false))) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - t0;
}
const tunnelUp = async () => (await relay.exec(['ss', '-Hltn', `sport = :${TUNNEL_PORT}`])).stdout.includes(`127.0.0.1:${TUNNEL_PORT}`);
/** TCP connect from the root namespace (the operator's side) to the node's sshd. */
async function dialNode(host: string, ns?: string): Promise<boolean> {
  const argv = ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${host}/22`];
  const r = await execa(ns ? 'ip' : argv[0], ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), { reject: false });
  return r.exitCode === 0;
}

/** Authenticates to the relay as the tunnel account with `keyFile`: resolves true, or false when the relay refuses the key. */
async function relayAccepts(privateKey: Buffer): Promise<boolean> {
  const { Client } = await import('ssh2');
  const c: Client = new Client();
  const relayKey = (await readFile(join(relay.merged, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).split(' ')[1];
  return new Promise<boolean>((resolve, reject) => {
    c.once('ready', () => (c.end(), resolve(true)));
    c.once('error', (e: Error) => (/authentication/i.test(e.message) ? resolve(false) : reject(e)));
    c.connect({ host: relay.address, port: 22, username: 'edgectl-tunnel', privateKey, hostVerifier: (b: Buffer) => b.toString('base64') === relayKey, readyTimeout: 10_000 });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-pack-'));
  home = join(dir, 'home');
  key = join(dir, 'id_ed25519');
  await execa('mkdir', ['-p', home]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-test', '-f', key]);
  const pub = await readFile(`${key}.pub`, 'utf8');
  const log = (s: string) => process.stderr.write(`${s}\n`);
  relay = await bootNode({ name: 'ec-pack-r1', authorizedKey: pub, log });
  node = await bootNode({ name: 'ec-pack-n1', authorizedKey: pub, log });
  // The node's only link: a veth pair to the relay's namespace (the second /30 of its slot's range).
  const base = node.address.split('.').slice(0, 3).join('.');
  const last = Number(node.address.split('.')[3]);
  nodeLinkIp = `${base}.${last + 3}`;
  relayLinkIp = `${base}.${last + 4}`;
  await execa('ip', ['-n', node.netns, 'link', 'add', 'nr0', 'type', 'veth', 'peer', 'name', 'rn0', 'netns', relay.netns]);
  await execa('ip', ['-n', node.netns, 'addr', 'add', `${nodeLinkIp}/30`, 'dev', 'nr0']);
  await execa('ip', ['-n', relay.netns, 'addr', 'add', `${relayLinkIp}/30`, 'dev', 'rn0']);
  await execa('ip', ['-n', node.netns, 'link', 'set', 'nr0', 'up']);
  await execa('ip', ['-n', relay.netns, 'link', 'set', 'rn0', 'up']);
  // The node dials the relay at the address the fleet gives it, over that link.
  await execa('ip', ['-n', node.netns, 'route', 'add', `${relay.address}/32`, 'via', relayLinkIp, 'dev', 'nr0']);

  fleet = join(dir, 'fleet');
  const nodeDocs = [
    `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: r1 }\nspec: { role: relay, address: ${relay.address}, ssh: { user: root, port: 22 }, root: ${ROOT} }\n`,
    `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: n1 }\nspec:\n  role: edge\n  address: n1.tunnel.pack.example\n  ssh: { user: root, port: 22 }\n  root: ${ROOT}\n  via: [r1]\n  tunnel: reverse\n  tunnelPort: ${TUNNEL_PORT}\n`,
  ].join('---\n');
  await writeTestFleet(fleet, { nodes: ['r1', 'n1'], nodeDocs, apps: app('v1\n') });
  await execa('git', ['init', '-q', fleet]);
  await commit('v1');
}, 1_500_000);

afterAll(async () => {
  await node?.close();
  await relay?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a NAT\'d node installed from a pack, behind a relay on real sshd', { timeout: 900_000 }, () => {
  it('packs, installs offline, applies and bootstraps through the tunnel, rotates the packed key, survives a link cut', async () => {
    // The relay: trusted, bootstrapped and applied directly; its one-time tunnel setup as root.
    { const r = await edgectl(['trust', 'r1', '-i', key]); expect(r.code, r.stderr).toBe(0); }
    await commit('trust r1');
    { const r = await edgectl(['bootstrap', 'r1', '--yes', '--json', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    await commit('r1 credential');

    // The pack: never inside the fleet; 0600; the key and credential hash recorded in the fleet.
    const inside = await edgectl(['bootstrap', '--pack', 'n1', '--out', join(fleet, 'n1.tgz')]);
    expect(inside.code).toBe(1);
    expect(inside.stderr).toMatch(/inside the fleet repo/);
    const archive = join(dir, 'n1-pack.tgz');
    const p = await edgectl(['bootstrap', '--pack', 'n1', '--out', archive, '--json']);
    expect(p.code, p.stderr).toBe(0);
    const packed = json(p);
    expect(packed).toMatchObject({ format: 'edgectl-pack/v1', node: 'n1', arch: 'x86_64', recordedIn: 'nodes.yaml' });
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    const again = await edgectl(['bootstrap', '--pack', 'n1', '--out', archive]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already/);
    const diff = (await execa('git', ['-C', fleet, 'diff', '-U0'])).stdout;
    expect(diff).toContain(`tunnelKey: "${packed.tunnelKey} n1"`);
    expect(diff).toContain(`credential: { sha256: ${packed.credentialSha256} }`);
    // What is in the archive: the private key 0600, no other secret of the fleet.
    const listing = (await execa('tar', ['tzvf', archive])).stdout;
    expect(listing).toMatch(/^-rw------- .* edgectl-pack-n1\/secrets\/tunnel-key$/m);
    expect(listing).toMatch(/edgectl-pack-n1\/install\.sh$/m);
    expect(listing).not.toMatch(/known_hosts|id_ed25519/);
    await commit('pack n1');
    { const r = await edgectl(['apply', '--yes', '-i', key, '--node', 'r1']); expect(r.code, r.stderr + r.stdout).toBe(0); }
    // Operator's one-time relay setup (docs/transport.md).
    for (const c of ['useradd --system --shell /usr/sbin/nologin --home-dir /nonexistent edgectl-tunnel', "usermod -p '*' edgectl-tunnel", `install -o root -g root -m 0644 ${ROOT}/current/tunnel/sshd_config /etc/ssh/sshd_config.d/edgectl-tunnel.conf`, 'sshd -t', 'systemctl reload ssh']) {
      const r = await relay.exec(['sh', '-c', c]);
      expect(r.code, `${c}: ${r.stderr}`).toBe(0);
    }
    expect(await relay.exec(['cat', `${ROOT}/current/tunnel/authorized_keys`]).then((r) => r.stdout)).toContain(packed.tunnelKey);

    // The node has no inbound route: before the firewall its sshd answers (the control), after it not.
    expect(await dialNode(node.address)).toBe(true);
    await execa('ip', ['netns', 'exec', node.netns, 'nft', '-f', '-'], { input: 'table inet nat_in {\n chain input {\n  type filter hook input priority 0; policy drop;\n  iif "lo" accept\n  ct state established,related accept\n }\n}\n' });
    expect(await dialNode(node.address)).toBe(false);
    expect(await dialNode(nodeLinkIp, relay.netns)).toBe(false);

    // Installed from the archive on the node, with no connection from the operator.
    await copyFile(archive, join(node.merged, 'root/n1-pack.tgz'));
    const inst = await node.exec(['sh', '-c', 'cd /root && tar xzf n1-pack.tgz && sh edgectl-pack-n1/install.sh']);
    expect(inst.code, inst.stderr + inst.stdout).toBe(0);
    expect(await onNode(['stat', '-c', '%a', `${ROOT}/secrets/tunnel-key`])).toBe('600');
    expect(await onNode(['systemctl', 'is-active', 'edgectl-agent.service'])).toBe('active');
    await until(tunnelUp, 'the packed node\'s tunnel on the relay', 60_000);

    // Through the tunnel: trust (host key seen end to end), apply.
    { const r = await edgectl(['trust', 'n1', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    await commit('trust n1');
    { const r = await edgectl(['apply', '--yes', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    await until(async () => (await served()) === 'v1', 'v1 served on the node', 20_000);

    // The packed key works on the relay now (the control) …
    await execa('tar', ['xzf', archive, '-C', dir, 'edgectl-pack-n1/secrets/tunnel-key']);
    const packedKey = await readFile(join(dir, 'edgectl-pack-n1/secrets/tunnel-key'));
    expect(await relayAccepts(packedKey)).toBe(true);
    // … a bootstrap through the tunnel makes key and credential anew on the node …
    const b = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key]);
    expect(b.code, b.stderr + b.stdout).toBe(0);
    const rb = json(b).nodes[0];
    expect(rb.changed).toEqual(expect.arrayContaining(['tunnel-key', 'credential']));
    expect(rb.tunnelKey).not.toBe(packed.tunnelKey);
    expect(rb.credentialSha256).not.toBe(packed.credentialSha256);
    expect(rb.recordedIn).toBe('nodes.yaml');
    expect((await node.exec(['test', '-e', `${ROOT}/secrets/packed`])).code).toBe(1);
    await commit('n1 rotated');
    // … and once applied to the relay, the packed key is refused; the node's own key is not.
    { const r = await edgectl(['apply', '--yes', '-i', key, '--node', 'r1']); expect(r.code, r.stderr + r.stdout).toBe(0); }
    expect(await relayAccepts(packedKey)).toBe(false);
    expect(await relayAccepts(await readFile(join(node.merged, ROOT.slice(1), 'secrets/tunnel-key')))).toBe(true);
    // A second bootstrap keeps the key (no rotation unasked).
    const b2 = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key]);
    expect(json(b2).nodes[0], b2.stderr).toMatchObject({ status: 'unchanged', tunnelKey: rb.tunnelKey, tunnelKeyRecorded: true });

    // An agent upgrade through the node's own tunnel: the restart takes the tunnel down under the
    // install's exec, so the gate runs detached on the node and edgectl comes back for its outcome
    // once the new agent holds the tunnel again, well within the exec's old 180 s wait.
    const mainState = async () => {
      const pid = await onNode(['systemctl', 'show', '-p', 'MainPID', '--value', 'edgectl-agent.service']);
      return (await onNode(['cat', `${ROOT}/run/agent.state`])).startsWith(`${pid} `) ? onNode(['cat', `${ROOT}/run/agent.state`]) : '';
    };
    const oldVersion = await onNode(['readlink', `${ROOT}/agent/current`]);
    const newer = join(dir, 'newer-agent');
    await cp(join(REPO, 'dist', 'agent'), newer, { recursive: true });
    await appendFile(join(newer, 'edgectl-agent.cjs'), '\n// pack-nat: another build of the same agent\n');
    let t1 = Date.now();
    const up = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key], { EDGECTL_AGENT_DIST: newer });
    const upMs = Date.now() - t1;
    expect(up.code, up.stderr + up.stdout).toBe(0);
    const ru = json(up).nodes[0];
    expect(ru).toMatchObject({ status: 'installed', tunnelKey: rb.tunnelKey });
    expect(ru.version).not.toBe(oldVersion);
    expect(ru.changed).toEqual(expect.arrayContaining(['agent', 'current']));
    expect(upMs).toBeLessThan(60_000);
    expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(ru.version);
    expect(await mainState()).toBe(`${await onNode(['systemctl', 'show', '-p', 'MainPID', '--value', 'edgectl-agent.service'])} ${ru.version} serving`);
    // The outcome was read and removed; nothing else of the upgrade is left in run/.
    expect(await onNode(['sh', '-c', `ls ${ROOT}/run | grep -c '^upgrade-' || true`])).toBe('0');
    // The gate ran as its own transient unit (not in the SSH session), collected once done.
    expect(await onNode(['sh', '-c', "journalctl -q -o cat --no-pager | grep -c 'edgectl: agent .* restart, health gate, rollback (upgrade ' || true"])).not.toBe('0');
    expect(await onNode(['sh', '-c', "systemctl list-units --all --plain --no-legend 'edgectl-upgrade-*' | wc -l"])).toBe('0');
    // A build that crashes at start: rolled back on the node, reported as such, as fast.
    const bad = join(dir, 'bad-agent');
    await cp(join(REPO, 'dist', 'agent'), bad, { recursive: true });
    await writeFile(join(bad, 'edgectl-agent.cjs'), "process.stderr.write('edgectl-agent: boom at start\\n'); process.exit(1);\n");
    t1 = Date.now();
    const down = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key], { EDGECTL_AGENT_DIST: bad });
    const downMs = Date.now() - t1;
    expect(down.code, down.stderr).toBe(1);
    const rd = json(down).nodes[0];
    expect(rd).toMatchObject({ status: 'rolled-back', error: { code: 'EDGECTL_BOOTSTRAP', message: expect.stringContaining('did not come up healthy') } });
    expect(rd.error.output).toContain('boom at start');
    expect(downMs).toBeLessThan(60_000);
    expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(ru.version);
    await until(async () => (await mainState()).endsWith(`${ru.version} serving`), 'the previous agent serving again', 20_000);
    await until(tunnelUp, 'the tunnel back after the rollback', 40_000);
    process.stderr.write(`pack-nat: agent upgrade through the tunnel ${upMs} ms, crashing build rolled back and reported in ${downMs} ms (load ${(await readFile('/proc/loadavg', 'utf8')).trim()})\n`);

    // The relay's sshd restarted, every session it held dropped (a crash or a reboot of the relay;
    // `systemctl restart ssh` alone keeps sessions): the tunnel comes back by itself, a plan works.
    const beforeRelay = Number((await agentStatus()).tunnel?.reconnects ?? -1);
    {
      const r = await relay.exec(['sh', '-c', 'systemctl stop ssh.service; for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sshd ] && kill -KILL "${p#/proc/}"; done; systemctl start ssh.service']);
      expect(r.code, r.stderr).toBe(0);
    }
    t1 = Date.now();
    await until(async () => (await edgectl(['plan', '--json', '-i', key, '--node', 'n1'])).code === 0, 'a plan through the tunnel after the relay\'s sshd restart', 60_000);
    const relayMs = Date.now() - t1;
    process.stderr.write(`pack-nat: plan through the tunnel ${relayMs} ms after the relay's sshd restart\n`);
    expect(Number((await agentStatus()).tunnel?.reconnects ?? -1)).toBeGreaterThan(beforeRelay);
    expect(relayMs).toBeLessThan(30_000 + 8_000);

    // The link to the relay is cut for longer than the agent's keepalives allow (3 × 10 s): the
    // agent gives the connection up and backs off. Restored: the tunnel comes back by itself (a new
    // connection: reconnects counted), within the backoff's cap (30 s) plus a plan.
    const reconnects = async () => Number((await agentStatus()).tunnel?.reconnects ?? -1);
    const before = await reconnects();
    await execa('ip', ['-n', node.netns, 'link', 'set', 'nr0', 'down']);
    await new Promise((r) => setTimeout(r, 40_000));
    const heldByRelay = await tunnelUp();
    await execa('ip', ['-n', node.netns, 'link', 'set', 'nr0', 'up']);
    await execa('ip', ['-n', node.netns, 'route', 'replace', `${relay.address}/32`, 'via', relayLinkIp, 'dev', 'nr0']);
    const plan = () => edgectl(['plan', '--json', '-i', key, '--node', 'n1']);
    const t0 = Date.now();
    await until(async () => (await plan()).code === 0, 'a plan through the restored tunnel', 60_000);
    const back = Date.now() - t0;
    process.stderr.write(`pack-nat: plan through the tunnel ${back} ms after the link came back (the relay ${heldByRelay ? 'still held' : 'had dropped'} the old listener)\n`);
    expect(await reconnects()).toBeGreaterThan(before);
    expect(back).toBeLessThan(30_000 + 8_000);
    await writeApps(fleet, app('v2\n'));
    await commit('v2');
    { const r = await edgectl(['apply', '--yes', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    await until(async () => (await served()) === 'v2', 'v2 served on the node', 20_000);
  });
});
