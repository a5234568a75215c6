import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ONESHOT_SCRIPT } from '../../src/lib/release/scripts-oneshot.js';

/**
 * The one-shot activation asks nginx (its probe) and the agent (its /healthz gate) over bash's
 * /dev/tcp. A server that is closing as it reloads resets connections it had accepted; a write
 * to such a socket raised SIGPIPE, which ended the whole activation with exit 141 and no
 * outcome (seen in CI: an agent re-created on SIGHUP). A reset is one failed try: the gate goes
 * on and passes when the server answers. Runs the script's own functions, in real bash, against
 * a real socket server that resets its first connections.
 */
function fn(name: string): string {
  const m = new RegExp(`^${name}\\(\\) \\{[\\s\\S]*?\\n\\}\\n`, 'm').exec(ONESHOT_SCRIPT);
  if (!m) throw new Error(`no ${name}() in the one-shot script`);
  // The script is a JS template literal's result already: its text is what bash runs.
  return m[0];
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** Resets the first `resets` connections as soon as they are accepted, then answers like the agent. */
function resettingAgent(resets: number, body: string, host = '127.0.0.1'): Promise<number> {
  let n = 0;
  server = createServer((c: Socket) => {
    c.on('error', () => {}); // a client that reads only the status line resets the connection
    n++;
    if (n <= resets) return void c.resetAndDestroy();
    c.once('data', () => c.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`));
  });
  return new Promise((r) => server!.listen(0, host, () => r((server!.address() as { port: number }).port)));
}

describe('one-shot activation against a peer that resets connections', () => {
  it('the agent gate counts each reset as a failed try and passes once /healthz answers with the digest (no exit 141)', async () => {
    const port = await resettingAgent(300, '{"ok":true,"config":"d1g"}');
    // sleep 0.25 between tries in the gate: a fast loop here, so that hundreds of resets are tried.
    const script = [fn('send'), fn('agent_runs').replace('sleep 0.25', ':'), `ah=127.0.0.1 ap=${port}`, 'agent_runs d1g 20 && echo passed'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('passed');
    expect(r.stderr, 'a reset is not an error message on the activation\'s stderr').toBe('');
  });

  it('and a gate whose agent never answers with the digest still fails (exit 1, not 141)', async () => {
    const port = await resettingAgent(50, '{"ok":true,"config":"other"}');
    const script = [fn('send'), fn('agent_runs').replace('sleep 0.25', 'sleep 0.01'), `ah=127.0.0.1 ap=${port}`, 'agent_runs d1g 2; echo "rc=$?"'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('rc=1');
  });

  it('the nginx probe: a reset is "no answer", then the status and body of the answer', async () => {
    const port = await resettingAgent(300, 'cfg-id\n');
    const script = [fn('send'), fn('probe'), `ph=127.0.0.1 pp=${port}`, 'for i in $(seq 400); do probe x /.edgectl/config body && break; done; echo "try=$i ps=$ps pb=${pb%%$\'\\n\'*}"'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('try=301 ps=200 pb=cfg-id');
  });

  it('the nginx probe without "body" reads the status line only (bash reads a socket a byte at a time)', async () => {
    const port = await resettingAgent(0, 'cfg-id\n');
    const script = [fn('send'), fn('probe'), `ph=127.0.0.1 pp=${port}`, 'probe x /; echo "rc=$? ps=$ps pb=[$pb]"'].join('\n');
    const trace = join(tmpdir(), `ec-probe-${process.pid}.strace`);
    const r = await execa('strace', ['-qq', '-e', 'trace=read', '-o', trace, 'bash', '-c', script], { reject: false });
    const lines = (await readFile(trace, 'utf8')).split('\n');
    await rm(trace, { force: true });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('rc=0 ps=200 pb=[]');
    // one read per byte of "HTTP/1.0 200 OK\r\n", none of the headers or body after it
    const fromSocket = lines.filter((l) => /^read\(\d+, ".{1,4}", 1\)\s+= 1$/.test(l));
    expect(fromSocket.length).toBeGreaterThan(5);
    expect(fromSocket.length).toBe('HTTP/1.0 200 OK\r\n'.length);
  });
});

describe('one-shot activation: where it asks the agent for /healthz (agent_conf)', () => {
  let dir: string;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** agent_conf on a release whose agent.json has this device listener, pretty-printed as render writes it. */
  async function conf(listen: string | undefined): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'ec-agentconf-'));
    await mkdir(join(dir, 'releases', 'r1', 'agent'), { recursive: true });
    const doc = { format: 'edgectl-agent/v1', role: 'edge', ...(listen === undefined ? {} : { listen }), admin: '127.0.0.1:7312', tunnel: { listen: '127.0.0.1:7399' } };
    await writeFile(join(dir, 'releases', 'r1', 'agent', 'agent.json'), `${JSON.stringify(doc, null, 2)}\n`);
    const r = await execa('bash', ['-c', [fn('agent_conf'), `cd ${dir}`, 'agent_conf r1; echo "rc=$? ah=$ah ap=$ap ${#ad}"'].join('\n')], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout;
  }

  it.each([
    ['127.0.0.1:7311', 'rc=0 ah=127.0.0.1 ap=7311 64'],
    ['0.0.0.0:7311', 'rc=0 ah=127.0.0.1 ap=7311 64'], // a wildcard listener is asked on loopback
    ['[::]:7311', 'rc=0 ah=::1 ap=7311 64'],
    ['[2001:db8::7]:7311', 'rc=0 ah=2001:db8::7 ap=7311 64'],
    ['192.0.2.7:7311', 'rc=0 ah=192.0.2.7 ap=7311 64'],
  ])('listen %s: asked at the right host and port, digest of the file', async (listen, want) => {
    expect(await conf(listen)).toBe(want);
  });

  it('no top-level device listener: no address, a nested "listen" is not taken for it (the gate then cannot pass, and the release is reverted)', async () => {
    expect(await conf(undefined)).toBe('rc=0 ah= ap= 64');
  });

  it('the gate reaches an agent on IPv6 loopback ([::] listener)', async () => {
    const port = await resettingAgent(3, '{"ok":true,"config":"d6"}', '::1');
    const script = [fn('send'), fn('agent_runs').replace('sleep 0.25', ':'), `ah=::1 ap=${port}`, 'agent_runs d6 10 && echo passed'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.stdout, r.stderr).toBe('passed');
  });
});

describe('one-shot activation: syncing a staged release', () => {
  it('syncs the directory and every listed path, 1,000 to a call (a release of many files stays under the argument limit)', async () => {
    const d = await mkdtemp(join(tmpdir(), 'ec-syncrel-'));
    try {
      const rel = join(d, 'rel');
      await mkdir(join(rel, 'a'), { recursive: true });
      const paths = ['a'];
      for (let i = 0; i < 2500; i++) paths.push(`a/f${i}`);
      await Promise.all(paths.slice(1).map((p) => writeFile(join(rel, p), 'x')));
      await writeFile(join(d, 'list'), paths.map((p) => p + '\n').join(''));
      const script = `${fn('sync_release')}sync() { echo "call $# $2 \${!#}"; command sync "$@"; }\nsync_release "$1" "$2"`;
      const r = await execa('bash', ['-c', script, 'x', rel, join(d, 'list')], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.split('\n')).toEqual([
        // "--" and 1,000 paths: the directory itself, a/, a/f0 … then on
        `call 1001 ${rel}/. ${rel}/a/f997`,
        `call 1001 ${rel}/a/f998 ${rel}/a/f1997`,
        `call 503 ${rel}/a/f1998 ${rel}/a/f2499`,
      ]);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('a sync that fails (here: a listed path that is gone) fails the whole call, so the release is not renamed into place', async () => {
    const d = await mkdtemp(join(tmpdir(), 'ec-syncrel-'));
    try {
      await mkdir(join(d, 'rel'));
      await writeFile(join(d, 'list'), 'gone\n');
      const r = await execa('bash', ['-c', `${fn('sync_release')}sync_release "$1" "$2"`, 'x', join(d, 'rel'), join(d, 'list')], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/gone/);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
