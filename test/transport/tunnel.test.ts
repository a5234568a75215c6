import type { Client, ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { createTunnelLab, KEYS_ONLY_PORT, relayClient, TUNNEL_PORT, until, type TunnelLab } from './tunnel-lab.js';

/**
 * The reverse tunnel the agent holds (issue 16), against real sshd: the relay runs the rendered
 * drop-in and authorized_keys, the NAT'd node runs the bundled agent, and edgectl reaches the
 * node only through the relay's 127.0.0.1:tunnelPort.
 */
const CAP_MS = 2000;
let t: TunnelLab;
const plan = () => cli(['plan', '--fleet', t.fleet, '--identity', t.lab.clientKey, '--json', '--node', 'edge-nat'], { home: t.home, timeout: 60_000 });

beforeAll(async () => {
  t = await createTunnelLab({ backoffCapMs: CAP_MS });
  await t.installRelayKeys();
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const forwardIn = (c: Client, port: number) => new Promise<void>((resolve, reject) => c.forwardIn('127.0.0.1', port, (err) => (err ? reject(err) : resolve())));
const exec = (c: Client, cmd: string, opts: Record<string, unknown> = {}) =>
  new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    c.exec(cmd, opts, (err, ch: ClientChannel) => {
      if (err) return reject(err);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.stderr.on('data', (d: Buffer) => (out += d));
      ch.on('exit', (code: number | null) => resolve({ code, out }));
      ch.on('close', () => resolve({ code: null, out }));
    });
  });

describe('the relay holds each node key to its own forward', () => {
  it('renders one restricted line per reverse node behind the relay', async () => {
    const keys = await t.installRelayKeys();
    const lines = keys.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^restrict,port-forwarding,permitlisten="127\\.0\\.0\\.1:${t.nat.tunnelPort}",command="/bin/false" ssh-ed25519 \\S+ edgectl-tunnel:edge-nat$`));
  });

  it.each([['with the drop-in', TUNNEL_PORT], ['by its key options alone', KEYS_ONLY_PORT]])('%s, a key may listen on its own port (the control), not on another node\'s, and another port is refused', async (_how, port) => {
    const b = await relayClient(t, t.keyB, {}, port);
    try {
      await expect(forwardIn(b, t.nat.tunnelPort!)).rejects.toThrow();
      await forwardIn(b, t.portB);
      expect(await t.listening(t.portB)).toBe(true);
    } finally {
      b.end();
    }
    const a = await relayClient(t, t.keyA, {}, port);
    try {
      await expect(forwardIn(a, t.portB)).rejects.toThrow();
      await expect(forwardIn(a, t.nat.tunnelPort! + 2)).rejects.toThrow();
      expect(await t.listening(t.nat.tunnelPort! + 2)).toBe(false);
    } finally {
      a.end();
    }
    await until(async () => !(await t.listening(t.portB)), 'the control listener to go');
  });

  it('a key that is not in the file is refused at authentication', async () => {
    await expect(relayClient(t, t.lab.clientKey)).rejects.toThrow(/authentication/i);
    await expect(relayClient(t, t.lab.clientKey, {}, KEYS_ONLY_PORT)).rejects.toThrow(/authentication/i);
  });

  /** The tunnel user is root with bash here: whatever is not refused would run. */
  async function expectNoSession(a: Client) {
    const cmd = await exec(a, 'echo MARK; id');
    expect(cmd.out).not.toContain('MARK');
    expect(cmd.out).not.toContain('uid=');
    expect(cmd.code).toBe(1); // /bin/false, whatever was asked
    const sh = await new Promise<{ out: string; code: number | null }>((resolve, reject) => a.shell(false, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.on('exit', (code: number | null) => resolve({ out, code }));
      ch.end('echo MARK\nid\n');
    }));
    expect(sh.out).not.toContain('MARK');
    expect(sh.code).toBe(1);
    await expect(exec(a, 'tty', { pty: true })).rejects.toThrow(/pty|pseudo|terminal/i);
    await expect(exec(a, 'echo $SSH_AUTH_SOCK', { agentForward: true })).rejects.toThrow(/agent/i);
  }
  const direct = (a: Client) => new Promise((resolve, reject) => a.forwardOut('127.0.0.1', 0, '127.0.0.1', 22, (err, ch) => (err ? reject(err) : resolve(ch))));

  it('with the drop-in, the node key opens no shell, runs no command, gets no pty, forwards no agent, opens no direct-tcpip channel', async () => {
    const a = await relayClient(t, t.keyA, { agent: '/nonexistent/agent.sock' });
    try {
      await expectNoSession(a);
      await expect(direct(a)).rejects.toThrow(/prohibited|open failed|denied/i);
    } finally {
      a.end();
    }
  });

  it('by its key options alone, the same, except direct-tcpip: that is the drop-in\'s to refuse', async () => {
    const a = await relayClient(t, t.keyA, { agent: '/nonexistent/agent.sock' }, KEYS_ONLY_PORT);
    try {
      await expectNoSession(a);
      // Documented in docs/transport.md: permitopen has no "none", so a key option cannot refuse it.
      const ch = (await direct(a)) as ClientChannel;
      ch.close();
    } finally {
      a.end();
    }
  });
});

describe('the agent holds the tunnel', () => {
  it('comes up, and plan reaches the node through the relay\'s port', async () => {
    t.startAgent();
    await until(() => t.listening(t.nat.tunnelPort!), 'the agent\'s tunnel on the relay');
    const s = await t.status();
    expect(s.tunnel).toMatchObject({ state: 'up', relay: 'relay-1', listen: `127.0.0.1:${t.nat.tunnelPort}`, reconnects: 0 });
    expect(Date.parse(s.tunnel.upSince)).toBeGreaterThan(0);
    const r = await plan();
    const p = json(r);
    expect(p.nodes).toEqual([expect.objectContaining({ node: 'edge-nat', action: 'create' })]);
  }, 60_000);

  it('the relay\'s sshd restarted: the tunnel is back by itself within the cap + 2 s', async () => {
    await t.stopRelay();
    await until(async () => (await t.status()).tunnel.state !== 'up', 'the agent to notice');
    await t.lab.start(t.relay);
    const back = await until(() => t.listening(t.nat.tunnelPort!), 'the tunnel back', CAP_MS + 10_000, 20);
    expect(back).toBeLessThan(CAP_MS + 2000);
    // The relay binds the port a moment before the agent reads its "forward granted" answer.
    await until(async () => (await t.status()).tunnel.state === 'up', 'the agent to see its forward granted', 5000, 20);
    const s = await t.status();
    expect(s.tunnel.state).toBe('up');
    expect(s.tunnel.reconnects).toBeGreaterThanOrEqual(1);
    expect(s.tunnel.lastError).toBeTruthy();
    expect(json(await plan()).nodes[0].action).toBe('create');
  }, 60_000);

  it('a node whose tunnel is down is "tunnel down" in plan, not a timeout', async () => {
    await t.stopAgent();
    await until(async () => !(await t.listening(t.nat.tunnelPort!)), 'the listener to go');
    const r = await plan();
    const reason = json(r).nodes[0].reason as string;
    expect(reason).toContain('tunnel down');
    expect(reason).toContain(`127.0.0.1:${t.nat.tunnelPort} of relay-1`);
    t.startAgent();
    await until(() => t.listening(t.nat.tunnelPort!), 'the tunnel back');
  }, 60_000);

  it('a relay still holding a listener for the port refuses it; the agent retries until the port is free, then holds it', async () => {
    await t.stopAgent();
    await until(async () => !(await t.listening(t.nat.tunnelPort!)), 'the listener to go');
    // What a dead link leaves on the relay: a session of this node's key still holding the port.
    const stale = await relayClient(t, t.keyA);
    await new Promise<void>((resolve, reject) => stale.forwardIn('127.0.0.1', t.nat.tunnelPort!, (err) => (err ? reject(err) : resolve())));
    t.startAgent();
    await until(async () => /refused to listen on 127\.0\.0\.1/.test((await t.status()).tunnel?.lastError ?? ''), 'the refusal in /status');
    expect((await t.status()).tunnel.state).not.toBe('up');
    stale.end(); // sshd drops the old listener (ClientAliveInterval × ClientAliveCountMax on a real dead link)
    const back = await until(async () => (await t.status()).tunnel.state === 'up', 'the agent to take the port', CAP_MS + 10_000, 20);
    expect(back).toBeLessThan(CAP_MS + 2000);
    expect(json(await plan()).nodes[0].action).toBe('create');
  }, 60_000);

  it('the node\'s link cut and restored: keepalives notice, and the tunnel is back by itself', async () => {
    await t.lab.execIn(t.nat, ['ip', 'link', 'set', 'up0', 'down']);
    await until(async () => (await t.status()).tunnel.state !== 'up', 'keepalives to notice', 10_000);
    await t.lab.execIn(t.nat, ['ip', 'link', 'set', 'up0', 'up']);
    await t.lab.execIn(t.nat, ['ip', 'route', 'replace', 'default', 'via', `10.231.${t.relay.down!.octet}.1`]);
    // Bounded by the relay dropping the dead session (its next client-alive probe meets a reset) plus the backoff.
    await until(async () => (await t.status()).tunnel.state === 'up', 'the tunnel back', 10_000 + CAP_MS + 2000, 20);
    expect(json(await plan()).nodes[0].action).toBe('create');
  }, 60_000);

  it('a changed relay host key is refused, and /status says so', async () => {
    const old = t.relay.fingerprint;
    await t.stopRelay();
    await t.lab.rekey(t.relay);
    await until(async () => !!(await t.status()).tunnel.hostKeyRefused, 'the refusal in /status', 15_000);
    const s = (await t.status()).tunnel;
    expect(s.state).not.toBe('up');
    expect(s.hostKeyRefused).toContain('HOST KEY CHANGED for relay relay-1');
    expect(s.hostKeyRefused).toContain(t.relay.fingerprint);
    expect(s.hostKeyRefused).toContain(old);
    expect(s.lastError).toContain('HOST KEY CHANGED');
    // Refused on every attempt, never accepted: still no listener after a few backoff rounds.
    await new Promise((r) => setTimeout(r, CAP_MS * 2));
    expect(await t.listening(t.nat.tunnelPort!)).toBe(false);
    expect((await t.status()).tunnel.state).not.toBe('up');
  }, 60_000);
});
