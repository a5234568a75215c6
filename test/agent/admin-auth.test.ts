import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { type AgentProc, admin, killAll, restart, startAgent, stopAgent } from './helpers.js';

/**
 * The admin API (status, peek, purge) answers only holders of the agent's token, whoever
 * connects: loopback is no authentication (a tenant's proxy app or any process on the node can
 * reach it). The token lives in a 0600 file the agent makes in its data dir.
 */
// Free ports, found in beforeAll: the agent's (admin API on PORT + 1), and those of the agents that must refuse to start.
let PORT: number;
let REFUSED: number;
let dir: string;
let agent: AgentProc;

/** Starts an agent that is expected to refuse to start: its exit status and what it said. */
async function refusedStart(args: string[]): Promise<{ code: number; stderr: string }> {
  const { code, stderr } = await cli(['agent', '--node', 'x', '--listen', `127.0.0.1:${REFUSED}`, '--role', 'edge', '--upstream', 'http://127.0.0.1:9/v1/forward', '--heartbeat-seconds', '0', ...args], { timeout: 30_000 });
  return { code, stderr };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-adminauth-'));
  PORT = await freePortRange(2);
  REFUSED = await freePortRange(2);
  agent = await startAgent('edge-t', PORT, PORT + 1, ['--role', 'edge', '--data', path.join(dir, 'data'), '--upstream', 'http://127.0.0.1:9/v1/forward', '--topic', 'acme/a', '--heartbeat-seconds', '0']);
}, 120_000);

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('admin API authentication', { timeout: 120_000 }, () => {
  it('refuses every request without the token or with another one (401), answers with it', async () => {
    const paths: [string, string][] = [['GET', '/healthz'], ['GET', '/status'], ['GET', '/metrics'], ['GET', '/v1/spool'], ['GET', '/v1/spool/peek?tenant=acme&topic=a'], ['POST', '/v1/spool/purge']];
    for (const [method, p] of paths) {
      for (const headers of [{}, { authorization: `Bearer ${'0'.repeat(64)}` }, { authorization: 'Basic eDp5' }] as Record<string, string>[]) {
        const r = await fetch(`http://127.0.0.1:${PORT + 1}${p}`, { method, headers });
        expect([p, r.status]).toEqual([p, 401]);
      }
      expect([p, (await admin(agent, p, { method })).status]).toEqual([p, 200]);
    }
  });

  it('keeps status and metrics off the device API (they name every tenant), health stays there', async () => {
    for (const p of ['/status', '/metrics', '/v1/spool']) expect((await fetch(`http://127.0.0.1:${PORT}${p}`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${PORT}/healthz`)).status).toBe(200);
  });

  it('makes the token once: 64 hex digits in a 0600 file in its data dir, the same after a restart', async () => {
    const file = path.join(dir, 'data', 'admin-token');
    const st = await stat(file);
    expect([st.isFile(), st.mode & 0o777]).toEqual([true, 0o600]);
    const token = (await readFile(file, 'utf8')).trim();
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    await stopAgent(agent);
    agent = await restart(agent);
    expect((await readFile(file, 'utf8')).trim()).toBe(token);
    expect((await admin(agent, '/v1/spool')).status).toBe(200);
  });

  it('never puts the admin API on a non-loopback address, whatever --admin says', async () => {
    for (const where of ['0.0.0.0', '192.0.2.1', 'localhost', '[::]', '127.1']) {
      const r = await refusedStart(['--admin', `${where}:${REFUSED + 1}`, '--data', path.join(dir, 'nope')]);
      expect([where, r.code]).toEqual([where, 1]);
      expect(r.stderr).toMatch(/admin: must be a loopback address/);
    }
  });

  it('refuses to start on a token file that is a symlink, someone else\'s, readable by others, a FIFO or not a token; writes nothing through a link', async () => {
    const cases: [string, (file: string) => Promise<void>, RegExp][] = [
      ['dangling symlink', (f) => symlink(path.join(dir, 'victim'), f), /is a symbolic link/],
      ['symlink to a real token', async (f) => { await writeFile(path.join(dir, 'real'), `${'a'.repeat(64)}\n`, { mode: 0o600 }); await symlink(path.join(dir, 'real'), f); }, /is a symbolic link/],
      ['mode 0644', async (f) => { await writeFile(f, `${'a'.repeat(64)}\n`); await chmod(f, 0o644); }, /has mode 644/],
      ['another user\'s file', async (f) => { await writeFile(f, `${'a'.repeat(64)}\n`, { mode: 0o600 }); await chown(f, 65534, 65534); }, /belongs to uid 65534/],
      ['a FIFO', async (f) => { execFileSync('mkfifo', ['-m', '600', f]); }, /is not a regular file/],
      ['not a token', (f) => writeFile(f, 'hunter2\n', { mode: 0o600 }), /does not hold a token/],
    ];
    for (const [what, make, why] of cases) {
      const data = path.join(dir, `bad-${cases.findIndex((c) => c[0] === what)}`);
      await mkdir(data, { recursive: true });
      await make(path.join(data, 'admin-token'));
      const r = await refusedStart(['--admin', `127.0.0.1:${REFUSED + 1}`, '--data', data]);
      expect([what, r.code]).toEqual([what, 1]);
      expect(r.stderr).toMatch(why);
    }
    await expect(stat(path.join(dir, 'victim'))).rejects.toThrow(/ENOENT/);
  });
});
