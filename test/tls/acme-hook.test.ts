import { mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHook } from '../../src/lib/acme/hook.js';
import { fleetSpecSchema } from '../../src/lib/fleet/schema.js';

/** The DNS-01 hook: its argv as written (no shell), its contract in the environment, and its failures named. */
let dir: string;
const call = { action: 'set' as const, domain: 'www.shop.example', record: '_acme-challenge.www.shop.example', value: 'abc_DEF-123' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-acme-hook-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the DNS-01 hook', () => {
  it('gets the action, domain, record and value in its environment; its arguments reach it unexpanded, with no shell', async () => {
    const out = join(dir, 'env.json');
    const script = join(dir, 'hook.mjs');
    await writeFile(script, `import { writeFileSync } from 'node:fs';\nconst e = process.env;\nwriteFileSync(process.argv[2], JSON.stringify({ argv: process.argv.slice(3), a: e.EDGECTL_ACME_ACTION, d: e.EDGECTL_ACME_DOMAIN, r: e.EDGECTL_ACME_RECORD, v: e.EDGECTL_ACME_VALUE, cwd: process.cwd() }));\n`);
    await runHook([process.execPath, script, out, '$(touch pwned)', '; rm -rf x', '*'], dir, call);
    const got = JSON.parse(await readFile(out, 'utf8'));
    expect(got).toEqual({ argv: ['$(touch pwned)', '; rm -rf x', '*'], a: 'set', d: 'www.shop.example', r: '_acme-challenge.www.shop.example', v: 'abc_DEF-123', cwd: dir });
    await expect(access(join(dir, 'pwned'))).rejects.toThrow();
  });

  it('./PATH is in the fleet repo; a non-zero exit, a missing program and the timeout fail, named, with the hook\'s output', async () => {
    await writeFile(join(dir, 'fail.sh'), '#!/bin/sh\necho "zone shop.example not found" >&2\nexit 4\n');
    await chmod(join(dir, 'fail.sh'), 0o755);
    await expect(runHook(['./fail.sh'], dir, call)).rejects.toMatchObject({ code: 'EDGECTL_ACME', message: expect.stringMatching(/DNS-01 hook \(\.\/fail\.sh, set _acme-challenge\.www\.shop\.example\) exited with status 4: zone shop\.example not found/) });
    await expect(runHook(['/nonexistent/hook'], dir, call)).rejects.toMatchObject({ code: 'EDGECTL_ACME', message: expect.stringMatching(/could not be started/) });
    const t0 = Date.now();
    await expect(runHook(['sleep', '30'], dir, call, 1)).rejects.toMatchObject({ code: 'EDGECTL_ACME', message: expect.stringMatching(/did not finish within 1 s/) });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('a ./ hook that is a symbolic link, or lies under one, is refused before anything runs', async () => {
    await mkdir(join(dir, 'real'), { recursive: true });
    await writeFile(join(dir, 'real', 'ok.sh'), '#!/bin/sh\ntouch "$0.ran"\n');
    await chmod(join(dir, 'real', 'ok.sh'), 0o755);
    await symlink('/bin/true', join(dir, 'link.sh'));
    await symlink('real', join(dir, 'via'));
    await expect(runHook(['./link.sh'], dir, call)).rejects.toMatchObject({ code: 'EDGECTL_ACME', message: expect.stringMatching(/symbolic link \(link\.sh\)/) });
    await expect(runHook(['./via/ok.sh'], dir, call)).rejects.toMatchObject({ code: 'EDGECTL_ACME', message: expect.stringMatching(/symbolic link \(via\)/) });
    await expect(access(join(dir, 'real', 'ok.sh.ran'))).rejects.toThrow();
    await runHook(['./real/ok.sh'], dir, call); // the same file, reached without a link: runs
    await access(join(dir, 'real', 'ok.sh.ran'));
  });

  it('validate refuses a program that is relative (other than ./), climbs out with .., or holds a line break', () => {
    const spec = (hook: unknown) => fleetSpecSchema.safeParse({ hub: { url: 'https://hub.example/v1/forward' }, acme: { directory: 'https://acme.example/directory', accountKey: 'tls/acme/account.key.age', dns01: { hook } } });
    expect(spec(['./hooks/dns.sh', '--zone', 'shop.example']).success).toBe(true);
    expect(spec(['/usr/local/bin/dns-hook']).success).toBe(true);
    expect(spec(['lexicon']).success).toBe(true);
    for (const bad of [['hooks/dns.sh'], ['../dns.sh'], ['./../dns.sh'], ['dns', 'a\nb'], [], ['sh -c "x"']]) expect(spec(bad).success, JSON.stringify(bad)).toBe(false);
    expect(fleetSpecSchema.safeParse({ hub: { url: 'https://hub.example/v1/forward' }, acme: { directory: 'http://acme.example/directory', accountKey: 'tls/a.age', dns01: { hook: ['x'] } } }).success).toBe(false);
  });
});
