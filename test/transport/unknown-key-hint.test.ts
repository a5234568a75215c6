import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { createLab, type Lab } from '../helpers/hosts.js';
import { freePort } from '../helpers/ports.js';

// Issue 12 item 13: an unknown host key says how to trust it, wherever it is reported, and no
// table cuts the reason off; `spool status --admin HOST:PORT` is understood, never "a bug".
let lab: Lab;
let fleet: string;
let home: string;
const edgectl = (args: string[]) => cli(args, { home });

beforeAll(async () => {
  lab = await createLab();
  const relay = await lab.addHost('relay-with-a-long-name-1', { relay: true });
  await lab.addHost('edge-behind-the-relay-1', { behind: relay });
  fleet = await mkdtemp(join(tmpdir(), 'ec-unknown-key-'));
  home = await mkdtemp(join(tmpdir(), 'ec-home-'));
  await lab.writeFleet(fleet);
});
afterAll(async () => {
  await lab?.close();
  for (const d of [fleet, home]) if (d) await rm(d, { recursive: true, force: true });
});

describe('an unknown host key', { timeout: 120_000 }, () => {
  it('plan: the reason names `edgectl trust NODE` and --accept-new, and is printed whole after the table', async () => {
    const r = await edgectl(['plan', '--fleet', fleet, '-i', lab.clientKey, '--node', 'edge-behind-the-relay-1']);
    expect(r.code).toBe(1);
    const reason = /^edge-behind-the-relay-1: (cannot reach .*)$/m.exec(r.stdout)?.[1];
    expect(reason, r.stdout).toMatch(/is not known: .* \(verify it, then `edgectl trust relay-with-a-long-name-1` or --accept-new\)/);
    expect(r.stdout).toMatch(/unreachable \(cannot reach .*…\)/);
  });

  it('apply: the result names the fix, whole', async () => {
    const r = await edgectl(['apply', '--fleet', fleet, '-i', lab.clientKey, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/or --accept-new\)/);
    expect(r.stdout).toMatch(/`edgectl trust [\w-]+`/);
  });
});

describe('spool status --admin', { timeout: 60_000 }, () => {
  it('HOST:PORT (the agent\'s own flag form) is an address: an agent that is not there is "unreachable", not a bug', async () => {
    const port = await freePort();
    const r = await cli(['spool', 'status', '--admin', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot reach the agent admin API at http://127\\.0\\.0\\.1:${port}: .* \\[EDGECTL_AGENT_UNREACHABLE\\]`));
    expect(r.stderr).not.toContain('EDGECTL_INTERNAL');
  });

  it('anything else that is not an http URL is a usage error', async () => {
    for (const bad of ['ftp://127.0.0.1:21', 'not a url', '127.0.0.1']) {
      const r = await cli(['spool', 'status', '--admin', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/--admin must be HOST:PORT or an http:\/\/ URL \(e\.g\. 127\.0\.0\.1:8481\), got .* \[EDGECTL_USAGE\]/);
    }
  });
});
