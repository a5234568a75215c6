import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { credential, killAll, post, sha, startAgent, waitFor } from './helpers.js';

// Issue 12 item 9: `--upstream http://relay:port` without /v1/forward retried 404 for ever, silently.

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-upstream-'));
});

afterAll(async () => {
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

describe('agent --upstream', () => {
  it('refuses, at start, an upstream whose path is not the hop API, with a hint (exit 1)', async () => {
    const [L, A] = await freePorts(2);
    const r = await cli(['agent', '--role', 'edge', '--node', 'edge-u', '--listen', `127.0.0.1:${L}`, '--admin', `127.0.0.1:${A}`, '--data', path.join(dir, 'refused'),
      '--upstream', 'http://relay.example:8480/v1/q/events', '--heartbeat-seconds', '0'], { timeout: 30_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--upstream http://relay.example:8480/v1/q/events: the path /v1/q/events is not the hop API (/v1/forward)');
    expect(r.stderr).toContain('http://relay.example:8480/v1/forward');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('takes a base URL (no path) and forwards to its /v1/forward', async () => {
    const [E, EA, H, HA] = await freePorts(4);
    const sink = path.join(dir, 'sink.jsonl');
    const cred = credential(dir, 'edge-b');
    const common = ['--topic', 'acme/events', '--heartbeat-seconds', '0'];
    await startAgent('hub-b', H, HA, ['--role', 'hub', '--data', path.join(dir, 'hub'), '--sink', `file:${sink}`, '--accept-forward', cred.accept(), ...common]);
    await startAgent('edge-b', E, EA, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://127.0.0.1:${H}`,
      '--credential-file', cred.file, '--token', `acme:${sha('tok')}`, ...common]);
    const r = await post(E, 'events', 'through a base URL', { authorization: 'Bearer tok' });
    expect(r.status).toBe(202);
    await waitFor(async () => (await readFile(sink, 'utf8').catch(() => '')).includes(r.json.id), 20_000, 'the message at the hub');
  }, 120_000);
});
