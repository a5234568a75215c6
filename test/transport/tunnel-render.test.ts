import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFleetSource } from '../../src/lib/fleet/source.js';
import { validateFleet } from '../../src/lib/fleet/validate.js';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet } from '../../src/lib/render/index.js';
import { agentConfigSchema } from '../../src/lib/bundle/agent-json.js';
import { parseSshPublicKey } from '../../src/lib/fleet/ssh-public-key.js';
import { backoffDelay } from '../../src/lib/agent/tunnel/backoff.js';
import { ReverseTunnel, tunnelHeartbeat } from '../../src/lib/agent/tunnel/tunnel.js';
import { renderMetrics, type AgentStatus } from '../../src/lib/agent/status.js';
import { silentLogger } from '../../src/lib/logger.js';

/**
 * The fleet's tunnel keys (validated to the byte), the relay's authorized_keys and drop-in, the
 * node's agent.json tunnel section, and the backoff: all pure, no sshd.
 */
let dir: string;
let keyA: string;
let keyB: string;
let relayKey: string;
const keygen = (f: string) => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'c', '-f', f]);
  return execFileSync('cat', [f + '.pub']).toString().trim().split(' ').slice(0, 2).join(' ');
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tunnel-render-'));
  keyA = keygen(join(dir, 'key-a'));
  keyB = keygen(join(dir, 'key-b'));
  relayKey = keygen(join(dir, 'key-r'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function writeFleet(f: string, nodes: Record<string, unknown>[], o: { relaySpec?: Record<string, unknown>; knownHosts?: string } = {}) {
  await rm(f, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(f, { recursive: true }));
  await writeFile(join(f, 'fleet.yaml'), 'apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/x" }\n');
  const relay = `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: r1 }\nspec: ${JSON.stringify({ role: 'relay', address: '198.51.100.7', ssh: { port: 2222, ...(o.relaySpec ?? {}) } })}\n`;
  const docs = nodes.map((s) => `---\napiVersion: edgectl/v1\nkind: Node\nmetadata: { name: ${s.name} }\nspec: ${JSON.stringify({ role: 'edge', address: `${s.name}.tunnel.example`, via: ['r1'], root: `/var/lib/edgectl/${s.name}`, ...s, name: undefined })}\n`);
  await writeFile(join(f, 'nodes.yaml'), relay + docs.join(''));
  if (o.knownHosts !== undefined) await writeFile(join(f, 'known_hosts'), o.knownHosts);
}

const tunnelProblems = async (f: string) => validateFleet(await readFleetSource(f)).problems.filter((p) => p.path?.startsWith('spec.tunnelKey'));

describe('spec.tunnelKey', () => {
  it('takes a plain OpenSSH public key, with or without a comment', () => {
    expect(parseSshPublicKey(keyA)).toMatchObject({ type: 'ssh-ed25519', line: keyA });
    expect(parseSshPublicKey(`${keyA} edge-04@site`)).toMatchObject({ line: keyA });
  });

  const b64 = (k: string) => k.split(' ')[1];
  it.each([
    ['options in front', (k: string) => `command="/bin/sh" ${k}`, /not one of/],
    ['a second line', (k: string) => `${k}\nssh-ed25519 AAAA`, /one line/],
    ['a second key', (k: string) => `${k} ${k}`, /"<type> <base64>"/],
    ['a quote in the comment', (k: string) => `${k} x"y`, /comment/],
    ['two spaces', (k: string) => `ssh-ed25519  ${b64(k)}`, /single spaces/],
    ['an unknown type', () => 'ssh-dss AAAAB3NzaC1kc3MAAACBAP', /not one of/],
    ['not base64', () => 'ssh-ed25519 AAAA$$$$', /base64/],
    ['padding junk', (k: string) => `ssh-ed25519 ${b64(k)}AA==`, /canonical|blob/],
    ['a truncated key', (k: string) => `ssh-ed25519 ${Buffer.from(b64(k), 'base64').subarray(0, 40).toString('base64')}`, /blob/],
    ['a key with bytes after it', (k: string) => `ssh-ed25519 ${Buffer.concat([Buffer.from(b64(k), 'base64'), Buffer.from([0, 0, 0, 1, 65])]).toString('base64')}`, /51 bytes/],
    ['another type in the blob', (k: string) => `ecdsa-sha2-nistp256 ${b64(k)}`, /not a ecdsa-sha2-nistp256 key/],
  ])('refuses %s', (_what, make, why) => {
    const r = parseSshPublicKey(make(keyA));
    expect(typeof r).toBe('string');
    expect(r).toMatch(why);
  });

  it('is checked by validate: a bad key, a key on a direct node, one key on two nodes', async () => {
    const f = join(dir, 'v');
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: `${keyA} x` }, { name: 'e2', tunnel: 'reverse', tunnelPort: 2202, tunnelKey: `${keyB}` }]);
    expect(await tunnelProblems(f)).toEqual([]);
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: `no-pty ${keyA}` }]);
    expect(await tunnelProblems(f)).toEqual([expect.objectContaining({ path: 'spec.tunnelKey', file: 'nodes.yaml', severity: 'error', message: expect.stringContaining('not one of') })]);
    await writeFleet(f, [{ name: 'e1', tunnelKey: keyA, via: [] }]);
    expect(await tunnelProblems(f)).toEqual([expect.objectContaining({ rule: 'tunnel-key-without-tunnel' })]);
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: keyA }, { name: 'e2', tunnel: 'reverse', tunnelPort: 2202, tunnelKey: `${keyA} other-comment` }]);
    expect(await tunnelProblems(f)).toEqual([expect.objectContaining({ rule: 'tunnel-key-reused', message: expect.stringContaining('node "e1"') })]);
  });
});

describe('render', () => {
  const render = async (f: string) => {
    const bundles = await renderFleet(await loadFleet(f), { edgectlVersion: 'test' });
    const file = (node: string, path: string) => bundles.find((b) => b.node === node)?.files.find((x) => x.path === path)?.data.toString();
    return { bundles, file };
  };

  it('the relay gets one restricted line per reverse node behind it; a node removed from the fleet is gone from it', async () => {
    const f = join(dir, 'r');
    await writeFleet(f, [
      { name: 'e2', tunnel: 'reverse', tunnelPort: 2202, tunnelKey: `${keyB} laptop` },
      { name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: keyA },
      { name: 'e3', tunnel: 'reverse', tunnelPort: 2203 },
      { name: 'd1', address: '198.51.100.20' },
    ], { relaySpec: { hostKey: relayKey } });
    let { file } = await render(f);
    const lines = (s?: string) => (s ?? '').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines(file('r1', 'tunnel/authorized_keys'))).toEqual([
      `restrict,port-forwarding,permitlisten="127.0.0.1:2201",command="/bin/false" ${keyA} edgectl-tunnel:e1`,
      `restrict,port-forwarding,permitlisten="127.0.0.1:2202",command="/bin/false" ${keyB} edgectl-tunnel:e2`,
    ]);
    const dropIn = file('r1', 'tunnel/sshd_config')!;
    expect(dropIn).toContain('Match User edgectl-tunnel\n');
    expect(dropIn).toContain('AuthorizedKeysCommand /usr/bin/cat /var/lib/edgectl/current/tunnel/authorized_keys\n');
    for (const l of ['AllowTcpForwarding remote', 'PermitOpen none', 'AllowAgentForwarding no', 'PermitTTY no', 'X11Forwarding no', 'ForceCommand /bin/false', 'ClientAliveInterval 10', 'ClientAliveCountMax 3']) expect(dropIn).toContain(`  ${l}\n`);
    // Edge nodes and direct nodes carry no tunnel files.
    expect(file('e1', 'tunnel/authorized_keys')).toBeUndefined();

    await writeFleet(f, [{ name: 'e2', tunnel: 'reverse', tunnelPort: 2202, tunnelKey: keyB }], { relaySpec: { hostKey: relayKey } });
    ({ file } = await render(f));
    expect(lines(file('r1', 'tunnel/authorized_keys'))).toEqual([`restrict,port-forwarding,permitlisten="127.0.0.1:2202",command="/bin/false" ${keyB} edgectl-tunnel:e2`]);
    await writeFleet(f, [{ name: 'd1', address: '198.51.100.20' }], { relaySpec: { hostKey: relayKey } });
    ({ file } = await render(f));
    expect(file('r1', 'tunnel/authorized_keys')).toBeUndefined();
  });

  it('a reverse node\'s agent.json dials its relay, pins the relay\'s key and lands on its tunnelPort', async () => {
    const f = join(dir, 'a');
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: keyA, ssh: { port: 2022 } }, { name: 'd1', address: '198.51.100.20' }], { relaySpec: { hostKey: relayKey } });
    const { file } = await render(f);
    const cfg = agentConfigSchema.parse(JSON.parse(file('e1', 'agent/agent.json')!));
    expect(cfg.tunnel).toEqual({ relay: 'r1', host: '198.51.100.7', port: 2222, user: 'edgectl-tunnel', hostKeys: [relayKey], remotePort: 2201, keyFile: '/var/lib/edgectl/e1/secrets/tunnel-key', target: '127.0.0.1:2022' });
    expect(JSON.parse(file('d1', 'agent/agent.json')!).tunnel).toBeUndefined();
  });

  it('without a pin on the relay, its keys come from the fleet\'s known_hosts, revoked ones never', async () => {
    const f = join(dir, 'k');
    // A blob whose own type string is not a key type (the fleet's file is the fleet's to craft).
    const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const crafted = Buffer.concat([str(Buffer.from('ssh-ed25519"\n')), str(Buffer.alloc(32, 1))]).toString('base64');
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: keyA }], { knownHosts: `[198.51.100.7]:2222 ${relayKey}\n[198.51.100.7]:2222 ${keyB}\n[198.51.100.7]:2222 ssh-ed25519 ${crafted}\n198.51.100.7 ${keyA}\n@revoked * ${keyB}\n` });
    const { file } = await render(f);
    expect(JSON.parse(file('e1', 'agent/agent.json')!).tunnel.hostKeys).toEqual([relayKey]);
  });

  it('the rendered drop-in is one sshd accepts', async () => {
    const f = join(dir, 'd');
    await writeFleet(f, [{ name: 'e1', tunnel: 'reverse', tunnelPort: 2201, tunnelKey: keyA }]);
    const { file } = await render(f);
    // Evaluated for an account this machine has: the same block, matched to `nobody`.
    await writeFile(join(dir, 'drop-in.conf'), file('r1', 'tunnel/sshd_config')!.replace('Match User edgectl-tunnel', 'Match User nobody'));
    await writeFile(join(dir, 'sshd_config'), `HostKey ${join(dir, 'key-r')}\nPidFile ${join(dir, 'pid')}\nUsePAM no\nInclude ${join(dir, 'drop-in.conf')}\n`);
    await import('node:fs/promises').then((fs) => fs.mkdir('/run/sshd', { recursive: true }));
    const out = execFileSync('/usr/sbin/sshd', ['-T', '-f', join(dir, 'sshd_config'), '-C', 'user=nobody,host=x,addr=192.0.2.1'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(out).toContain('allowtcpforwarding remote');
    expect(out).toContain('permitopen none');
    expect(out).toContain('forcecommand /bin/false');
    expect(await readFile(join(dir, 'drop-in.conf'), 'utf8')).not.toContain('Include');
  });
});

describe('backoff', () => {
  it('full jitter below base·2^attempt, capped', () => {
    const p = { baseMs: 500, capMs: 30_000 };
    expect(backoffDelay(0, p, () => 0.999)).toBe(499);
    expect(backoffDelay(3, p, () => 0.5)).toBe(2000);
    expect(backoffDelay(10, p, () => 0.999)).toBe(29_970);
    expect(backoffDelay(5000, p, () => 0.999)).toBe(29_970);
    expect(backoffDelay(4, p, () => 0)).toBe(0);
  });
});

describe('tunnel status views', () => {
  it('the heartbeat and /metrics read the tunnel\'s status', () => {
    const tunnel = new ReverseTunnel({ relay: 'r1', host: '198.51.100.7', port: 22, user: 'edgectl-tunnel', hostKeys: [relayKey], remotePort: 2201, keyFile: '/var/lib/edgectl/secrets/tunnel-key', target: '127.0.0.1:22' }, { log: silentLogger });
    const st = tunnel.status();
    expect(st).toMatchObject({ state: 'stopped', relay: 'r1', listen: '127.0.0.1:2201', upSince: null, reconnects: 0, lastError: null });
    expect(tunnelHeartbeat({ ...st, state: 'up', upSince: '2026-12-02T07:00:00.000Z', reconnects: 3 })).toEqual({ state: 'up', upSince: '2026-12-02T07:00:00.000Z', reconnects: 3, lastError: null });
    const base = { queues: [], intake: { responses: {} }, store: { state: 'open', incidents: [], quarantined: [], writeErrors: 0 }, forward: { messages: 0, errors: 0, lastSuccessAt: null }, memory: { rssBytes: 0 }, fastcgi: [] } as unknown as AgentStatus;
    const m = renderMetrics({ ...base, tunnel: { ...st, state: 'up', reconnects: 2 } });
    expect(m).toContain('edgectl_tunnel_up{relay="r1"} 1\n');
    expect(m).toContain('edgectl_tunnel_reconnects_total{relay="r1"} 2\n');
    expect(renderMetrics(base)).not.toContain('edgectl_tunnel');
  });
});
