import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { writeTestFleet } from '../apply/helpers.js';
import { localPorts } from '../../src/lib/nodes/local-mode.js';
import { parseNodeAnswer, RefusedAnswer } from '../../src/lib/status/parse.js';
import { MAX_STATUS_OUTPUT } from '../../src/lib/status/script.js';

/**
 * The node and its agent are hostile too. Nodes of the embedded default (--local: each node a
 * directory here, the status script run by this machine's sh) whose "agent" is a server of this
 * test on the node's admin port, answering junk, another node's name or bad fields; and nodes
 * whose tools lie (a df printing a line without end) or are missing (no curl: bash's /dev/tcp;
 * neither curl nor bash: "unknown").
 */
const BASE = 41_000;
const RANGE = 20;
const NODES = ['n1', 'n2', 'n3'];
const ports = localPorts(NODES, { portBase: BASE, portRange: RANGE });
let dir: string;
let fleet: string;
let local: string;
const servers: Server[] = [];
const seen = new Map<string, string[]>();
const tokens = new Map<string, string>();
const leaked: string[] = [];
const inArgv = (token: string) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).some((d) => {
  try {
    return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(token);
  } catch {
    return false;
  }
});
const run = (args: string[], env?: Record<string, string>) => cli([...args, '--fleet', fleet, '--local', local, '--local-port-base', String(BASE), '--local-port-range', String(RANGE), '--json'], { env });
const row = (r: { stdout: string; stderr: string; code: number }, node: string) => json(r).nodes.find((n: { node: string }) => n.node === node);

const answers: Record<string, (path: string) => { status: number; body: string }> = {
  n1: () => ({ status: 200, body: 'A'.repeat(1024 * 1024) }),
  n2: (path) => path === '/healthz' ? { status: 200, body: JSON.stringify({ ok: true, store: 'open' }) } : {
    status: 200,
    body: JSON.stringify({
      node: 'n2', version: '1.2.3', uptimeSeconds: 42, totals: { depth: -1, bytes: 10, dropped: 2, expired: 1 }, queues: [{ oldestAgeSeconds: 'x' }, { oldestAgeSeconds: 7 }],
      store: { state: 'open', quarantined: ['q1'] }, forward: { lastSuccessAt: 'soon' },
      fastcgi: { 'bad\nname': { state: 'running' }, php: { state: 'backoff', pids: [1, 2], restarts: 5 } },
      tunnel: { state: 'down', upSince: null, reconnects: 3, lastError: { message: 'refused\x1b[31m red' } },
    }),
  },
  n3: (path) => path === '/healthz' ? { status: 200, body: '{"ok":true,"store":"open"}' } : { status: 200, body: JSON.stringify({ node: 'evil', totals: { depth: 99999 } }) },
};

/** A PATH holding only these tools (sh and git always), as a node without the others would have. */
async function pathWith(name: string, tools: string[], extra: Record<string, string> = {}): Promise<string> {
  const d = join(dir, `path-${name}`);
  await mkdir(d);
  for (const t of ['sh', 'git', ...tools]) await symlink(t === 'sh' ? '/bin/sh' : `/usr/bin/${t}`, join(d, t));
  for (const [t, script] of Object.entries(extra)) {
    await writeFile(join(d, t), script);
    await chmod(join(d, t), 0o755);
  }
  return d;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-status-hostile-'));
  fleet = join(dir, 'fleet');
  local = join(dir, 'nodes');
  await writeTestFleet(fleet, { nodes: NODES, apps: [] });
  for (const n of NODES) {
    const token = randomBytes(32).toString('hex');
    tokens.set(n, token);
    await mkdir(join(local, n, 'spool'), { recursive: true });
    await writeFile(join(local, n, 'spool', 'admin-token'), `${token}\n`, { mode: 0o600 });
    const s = createServer((req, res) => {
      seen.set(n, [...(seen.get(n) ?? []), `${req.url} ${req.headers.authorization ?? ''}`]);
      // While the node's curl (or bash) waits for this answer: is the token on any command line?
      if (inArgv(token)) leaked.push(`${n} ${req.url}`);
      const a = answers[n](req.url ?? '/');
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    });
    await new Promise<void>((r) => s.listen(ports.get(n)!.admin, '127.0.0.1', r));
    servers.push(s);
  }
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a hostile agent or node', { timeout: 60_000 }, () => {
  it('junk, bad fields and another node\'s name: each is refused or dropped, the rows say so', async () => {
    seen.clear();
    leaked.length = 0;
    const r = await run(['status']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(2);
    // The script asked with each node's own token (read on the node: the CLI never held it).
    for (const n of NODES) expect(seen.get(n)).toContain(`/healthz Bearer ${tokens.get(n)}`);
    // ...and never on a command line the node's other users could read (ps).
    expect(leaked).toEqual([]);
    expect(row(r, 'n1').agent).toMatchObject({ state: 'down', detail: '/healthz answered 200 with no JSON' });
    expect(row(r, 'n2')).toMatchObject({
      agent: { state: 'up', version: '1.2.3', uptimeSeconds: 42, store: 'open' },
      spool: { depth: 0, bytes: 10, oldestAgeSeconds: 7, dropped: 2, expired: 1, quarantined: 1 },
      lastForward: null,
      fastcgi: [{ app: 'php', state: 'backoff', processes: 2, restarts: 5 }],
      tunnel: { state: 'down', reconnects: 3, lastError: 'refused [31m red' },
      health: 'degraded',
    });
    expect(row(r, 'n2').problems).toEqual(expect.arrayContaining(['1 store(s) quarantined', 'fastcgi php backoff', 'tunnel down']));
    expect(row(r, 'n3')).toMatchObject({ agent: { state: 'down', detail: 'the agent on its admin port is node "evil"' }, spool: null });
  });

  it('no curl on the node: the agent is asked through bash\'s /dev/tcp, with the same answers', async () => {
    seen.clear();
    leaked.length = 0;
    const path = await pathWith('nocurl', ['bash', 'readlink', 'head', 'tail', 'df', 'cat', 'timeout']);
    const r = await run(['status', '--node', 'n2'], { PATH: path });
    expect(r.stderr).toBe('');
    expect(seen.get('n2')).toEqual([`/healthz Bearer ${tokens.get('n2')}`, `/status Bearer ${tokens.get('n2')}`]);
    expect(leaked).toEqual([]);
    expect(row(r, 'n2')).toMatchObject({ agent: { state: 'up', version: '1.2.3' }, fastcgi: [{ app: 'php', state: 'backoff' }] });
  });

  it('neither curl nor bash: "agent unknown", nothing asked', async () => {
    seen.clear();
    leaked.length = 0;
    const path = await pathWith('bare', ['readlink', 'head', 'tail', 'df', 'cat']);
    const r = await run(['status', '--node', 'n2'], { PATH: path });
    expect(row(r, 'n2').agent).toMatchObject({ state: 'unknown', detail: 'the node has neither curl nor bash to ask it with' });
    expect(seen.size).toBe(0);
  });

  it('a node tool that prints a line without end: the answer is refused, the row says why, exit 1, no stack', async () => {
    const path = await pathWith('liar', ['readlink', 'head', 'tail', 'cat', 'curl'], { df: '#!/bin/sh\n/usr/bin/head -c 20000 /dev/zero | /usr/bin/tr "\\0" x\necho\n' });
    const r = await run(['status', '--node', 'n1'], { PATH: path });
    expect(r.code).toBe(1);
    expect(row(r, 'n1')).toMatchObject({ health: 'error', reachable: true, error: expect.stringMatching(/refused: line \d+ is \d+ characters long/) });
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('parseNodeAnswer (the node\'s output, pure)', () => {
  const nonce = 'abc123';
  it('refuses what the script cannot have printed', () => {
    expect(() => parseNodeAnswer('x'.repeat(MAX_STATUS_OUTPUT + 1), nonce)).toThrow(RefusedAnswer);
    expect(() => parseNodeAnswer('<html>login</html>\n', nonce)).toThrow(/does not start as the status script's/);
    expect(() => parseNodeAnswer(`v\t1\nhttp\tstatus\nHTTP/1.1 200 OK\r\n\r\n{}`, nonce)).toThrow(/has no end/);
    expect(() => parseNodeAnswer(`v\t1\nload\t${'1 '.repeat(5000)}\n`, nonce)).toThrow(/line 2 is/);
  });
  it('keeps only fields that validate', () => {
    const f = parseNodeAnswer([
      'v\t1', 'current\treleases/../../etc', `good\treleases/${'b'.repeat(20)}`, `rec\t${'b'.repeat(20)}\tgood\tdone\tnow\t{"commit":"$(id)"}`,
      'nginx\t-1', 'workers\t1e9', 'agentv\t../x', 'token\tstolen', 'disk\t/dev/x 10 5 20 50% /', 'load\tNaN 1 2', 'junk line', `--${nonce}-end--`, '',
    ].join('\n'), nonce);
    expect(f).toMatchObject({ current: null, good: 'b'.repeat(20), nginxPid: null, workers: null, agentInstalled: null, token: null, disk: null, load: null });
    expect(f.commits.size).toBe(0);
  });
});
