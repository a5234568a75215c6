import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type CliResult } from '../helpers/cli.js';
import { localPortBlock } from '../helpers/local-ports.js';
import { killNginx } from '../apply/helpers.js';
import { encryptTo } from '../../src/lib/secrets/age.js';
import { keyLines, makeCa, makeIdentity, makeLeaf, writeTlsFleet } from './helpers.js';

/** Every output of a full plan / apply / diff / --json run, grepped for the decrypted keys' bytes. */
const ADDR = '127.0.2.18';
let dir: string;
let nodes: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tls-leak-'));
  await chmod(dir, 0o755);
  nodes = join(dir, 'nodes');
});
afterAll(async () => {
  if (dir) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('no secret byte in any output', { timeout: 240_000 }, () => {
  it('plan, plan --diff, --json, a saved plan, apply (fresh and saved), drift, history, render: none shows a key', async () => {
    const fleet = join(dir, 'fleet');
    const scratch = join(dir, 'scratch');
    await mkdir(scratch);
    const ca = makeCa(scratch);
    const id = await makeIdentity(join(scratch, 'id.txt'));
    const keys = await writeTlsFleet(fleet, { ca, recipients: [id.recipient], apps: [{ name: 'www', domains: ['www.acme.example'] }] });
    const ports = await localPortBlock(['edge-1'], ADDR);
    const flags = ['--fleet', fleet, '--local', nodes, ...ports.flags, '--local-address', ADDR, '--age-identity', id.file];
    const outputs: { what: string; text: string }[] = [];
    const run = async (what: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> => {
      const r = await cli(args, { env });
      outputs.push({ what, text: r.stdout + r.stderr });
      return r;
    };
    expect((await run('plan', ['plan', ...flags])).code).toBe(0);
    expect((await run('plan --json', ['plan', ...flags, '--json'])).code).toBe(0);
    expect((await run('apply', ['apply', ...flags, '--yes'])).code).toBe(0);
    // A new key: the diff and the saved plan carry a changed secret.
    const leaf = makeLeaf(scratch, ca, ['www.acme.example']);
    keys.set('www2', leaf.key);
    await writeFile(join(fleet, 'tls', 'www.pem'), leaf.chain);
    await writeFile(join(fleet, 'tls', 'www.key.age'), await encryptTo([id.recipient], leaf.key));
    const diff = await run('plan --diff', ['plan', ...flags, '--diff']);
    expect(diff.code).toBe(0);
    // The key shows as a change, by its digest only.
    expect(diff.stdout).toMatch(/^\+\+\+ b\/nginx\/tls\/acme\.www\/key\.pem\n\(redacted\) sha256:[0-9a-f]{64} \(secret, mode 0600\) -> sha256:[0-9a-f]{64} \(secret, mode 0600\)$/m);
    expect((await run('plan --diff --json', ['plan', ...flags, '--diff', '--json'])).code).toBe(0);
    const saved = join(dir, 'plan.json');
    expect((await run('plan --out', ['plan', ...flags, '--out', saved])).code).toBe(0);
    const planFile = await readFile(saved, 'utf8');
    outputs.push({ what: 'plan.json', text: planFile });
    expect(JSON.parse(planFile).sealed).toBeDefined();
    // Applying the saved plan without an identity fails naming the sealed secret; with one, it applies.
    const noId = await run('apply plan.json, no identity', ['apply', saved, '--fleet', fleet, '--yes'], { EDGECTL_AGE_IDENTITY_FILE: undefined, HOME: scratch });
    expect(noId.code).toBe(1);
    expect(noId.stderr).toContain('cannot decrypt tls/www.key.age (sealed in');
    const ap = await run('apply plan.json', ['apply', saved, '--fleet', fleet, '--yes', '--json', '--age-identity', id.file]);
    expect(ap.code, ap.stdout + ap.stderr).toBe(0);
    expect((await run('drift --json', ['drift', ...flags, '--json'])).code).toBe(0);
    expect((await run('history', ['history', 'edge-1', ...flags, '--json'])).code).toBe(0);
    expect((await run('render --json', ['render', '--fleet', fleet, '--out', join(dir, 'render'), '--json', '--age-identity', id.file])).code).toBe(0);
    // A failing run with debugging on: the stack, if any, has no key either.
    await writeFile(join(fleet, 'tls', 'www.key.age'), await encryptTo([(await makeIdentity(join(scratch, 'x.txt'))).recipient], leaf.key));
    expect((await run('plan, wrong recipient, EDGECTL_DEBUG', ['plan', ...flags, '--diff', '--json'], { EDGECTL_DEBUG: '1' })).code).toBe(1);

    const lines = [...keys.values()].flatMap(keyLines);
    expect(lines.length).toBeGreaterThan(3);
    for (const o of outputs) for (const l of lines) expect(o.text.includes(l), `${o.what} shows a line of a key`).toBe(false);
    // And the key's own bytes in base64 (as a saved plan would carry a file).
    for (const o of outputs) for (const k of keys.values()) expect(o.text.includes(k.toString('base64').slice(0, 40)), `${o.what} carries a key's bytes`).toBe(false);
    expect(outputs.length).toBeGreaterThanOrEqual(12);
  });
});
