import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { EXAMPLE } from '../helpers/paths.js';
import { DEMO_IDENTITY_FILE } from '../../src/lib/secrets/identity.js';
import { makeIdentity } from './helpers.js';

/** The example fleet without its demo identity: what a CI without the key, or an operator with the wrong one, sees. */
let dir: string;
let fleet: string;
let home: string;
const KEY = 'tls/acme/www.acme.example.key.age';
// No identity from the environment or the home directory of whoever runs the tests.
const bare = () => ({ home, env: { EDGECTL_AGE_IDENTITY_FILE: undefined } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tls-secrets-'));
  fleet = join(dir, 'fleet');
  home = join(dir, 'home');
  await mkdir(home);
  await cp(EXAMPLE, fleet, { recursive: true, filter: (s) => !s.includes('.edgectl') && !s.endsWith(DEMO_IDENTITY_FILE) });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('secrets: validate without a key, render and apply with one', { timeout: 120_000 }, () => {
  it('validate checks a secret\'s shape without any identity: the example is valid', async () => {
    const r = await cli(['validate', '--fleet', fleet], bare());
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('render without an identity fails naming the secret, exit 1, no stack', async () => {
    const r = await cli(['render', '--fleet', fleet, '--out', join(dir, 'out1')], bare());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot decrypt ${KEY}: no age identity`);
    expect(r.stderr).toContain('[EDGECTL_SECRET]');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a wrong identity fails naming the secret and the identity file', async () => {
    const wrong = await makeIdentity(join(dir, 'wrong.txt'));
    for (const how of [['--age-identity', wrong.file], []]) {
      const r = await cli(['render', '--fleet', fleet, '--out', join(dir, 'out2'), ...how], { home, env: { EDGECTL_AGE_IDENTITY_FILE: how.length ? undefined : wrong.file } });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot decrypt ${KEY}: the age identity ${wrong.file}`);
      expect(r.stderr).toContain('is not one of its recipients');
      expect(r.stderr).not.toContain(wrong.identity);
    }
    // Not an identity file at all: the line is named, never quoted.
    await writeFile(join(dir, 'garbage.txt'), 'AGE-SECRET-KEY-1NOTAKEY\n');
    const g = await cli(['render', '--fleet', fleet, '--out', join(dir, 'out3'), '--age-identity', join(dir, 'garbage.txt')], bare());
    expect(g.code).toBe(1);
    expect(g.stderr).toContain(`${join(dir, 'garbage.txt')}:1: not an age X25519 identity`);
    expect(g.stderr).not.toContain('NOTAKEY');
  });

  it('the default identity file (a link is fine: it is the operator\'s); a demo identity in the fleet is never followed through a link', async () => {
    const h = join(dir, 'home-default');
    await mkdir(join(h, '.config', 'edgectl', 'age'), { recursive: true });
    await symlink(join(EXAMPLE, DEMO_IDENTITY_FILE), join(h, '.config', 'edgectl', 'age', 'keys.txt'));
    const ok = await cli(['render', '--fleet', fleet, '--out', join(dir, 'out-d1')], { home: h, env: { EDGECTL_AGE_IDENTITY_FILE: undefined } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).not.toContain('demo identity');
    await symlink(join(EXAMPLE, DEMO_IDENTITY_FILE), join(fleet, DEMO_IDENTITY_FILE));
    try {
      const r = await cli(['render', '--fleet', fleet, '--out', join(dir, 'out-d2')], bare());
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no age identity');
    } finally {
      await rm(join(fleet, DEMO_IDENTITY_FILE));
    }
  });

  it('validate refuses a plaintext or mis-encrypted secret, and a plaintext private key under tls/', async () => {
    const bad = join(dir, 'bad');
    await cp(fleet, bad, { recursive: true });
    const other = await makeIdentity(join(dir, 'other.txt'));
    // The Fleet lists two recipients, the key was encrypted to one: the new one could not decrypt it.
    const fy = await readFile(join(bad, 'fleet.yaml'), 'utf8');
    await writeFile(join(bad, 'fleet.yaml'), fy.replace(/recipients: \[(age1[a-z0-9]+)\]/, `recipients: [$1, ${other.recipient}]`));
    await writeFile(join(bad, 'tls', 'notes.age'), 'just plaintext\n');
    await writeFile(join(bad, 'tls', 'passphrase.age'), Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\n' + Buffer.from('age-encryption.org/v1\n-> scrypt c2FsdA 18\nAAAA\n--- bWFj\n').toString('base64').match(/.{1,64}/g)!.join('\n') + '\n-----END AGE ENCRYPTED FILE-----\n'));
    await writeFile(join(bad, 'tls', 'leaked.pem'), '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n');
    const r = await cli(['validate', '--fleet', bad, '--json'], bare());
    expect(r.code).toBe(1);
    const ps = json(r).problems.map((p: { rule: string; file: string; message: string }) => `${p.rule} ${p.file}: ${p.message}`);
    expect(ps).toEqual(expect.arrayContaining([
      expect.stringMatching(/^secret-recipients tls\/acme\/www\.acme\.example\.key\.age: .* encrypted to 1 recipient\(s\), the Fleet lists 2$/),
      expect.stringMatching(/^secret-not-age tls\/notes\.age: .*is not an ASCII-armored age file/),
      expect.stringMatching(/^secret-recipients tls\/passphrase\.age: .*scrypt/),
      expect.stringMatching(/^secret-plaintext tls\/leaked\.pem: .*private key in plaintext/),
    ]));
    // Encrypted again to both, it validates.
    await rm(join(bad, 'tls', 'notes.age'));
    await rm(join(bad, 'tls', 'passphrase.age'));
    await rm(join(bad, 'tls', 'leaked.pem'));
    const demo = await readFile(join(EXAMPLE, DEMO_IDENTITY_FILE), 'utf8');
    const set = await cli(['secret', 'set', '--fleet', bad, join(bad, KEY)], { ...bare(), env: {}, input: 'plaintext of the test\n' });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`encrypted ${KEY} to 2 recipient(s)`);
    expect(demo).toContain('AGE-SECRET-KEY-1');
    expect((await cli(['validate', '--fleet', bad], bare())).code).toBe(0);
  });

  it('secret rotate re-encrypts to the recipients as they are now: a new recipient can then render', async () => {
    const fl = join(dir, 'rotate');
    await cp(fleet, fl, { recursive: true });
    const added = await makeIdentity(join(dir, 'added.txt'));
    const fy = await readFile(join(fl, 'fleet.yaml'), 'utf8');
    await writeFile(join(fl, 'fleet.yaml'), fy.replace(/recipients: \[(age1[a-z0-9]+)\]/, `recipients: [$1, ${added.recipient}]`));
    expect((await cli(['validate', '--fleet', fl], bare())).code).toBe(1);
    expect((await cli(['render', '--fleet', fl, '--out', join(dir, 'out-r1'), '--age-identity', added.file], bare())).code).toBe(1);
    // The new recipient cannot rotate (it cannot decrypt yet); nothing is written.
    const before = await readFile(join(fl, KEY));
    const no = await cli(['secret', 'rotate', '--fleet', fl, '--age-identity', added.file], bare());
    expect(no.code).toBe(1);
    expect(await readFile(join(fl, KEY))).toEqual(before);
    const r = await cli(['secret', 'rotate', '--fleet', fl, '--age-identity', join(EXAMPLE, DEMO_IDENTITY_FILE)], bare());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`re-encrypted 1 secret(s) to 2 recipient(s): ${KEY}`);
    expect((await cli(['validate', '--fleet', fl], bare())).code).toBe(0);
    const ok = await cli(['render', '--fleet', fl, '--out', join(dir, 'out-r2'), '--age-identity', added.file], bare());
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('secret edit: the plaintext only in a private 0700 directory, gone afterwards; the result encrypted to the recipients', async () => {
    const fl = join(dir, 'edit');
    await cp(fleet, fl, { recursive: true });
    const demo = join(EXAMPLE, DEMO_IDENTITY_FILE);
    expect((await cli(['secret', 'set', '--fleet', fl, join(fl, 'tls', 'note.age')], { ...bare(), input: 'version one\n' })).code).toBe(0);
    const log = join(dir, 'editor.log');
    const editor = join(dir, 'editor.sh');
    await writeFile(editor, `#!/bin/sh\nprintf '%s %s %s %s\\n' "$1" "$(stat -c %a "$1")" "$(stat -c %a "$(dirname "$1")")" "$(cat "$1")" > ${log}\nprintf 'version two\\n' > "$1"\n`, { mode: 0o755 });
    const r = await cli(['secret', 'edit', '--fleet', fl, join(fl, 'tls', 'note.age'), '--age-identity', demo], { home, env: { EDGECTL_AGE_IDENTITY_FILE: undefined, XDG_RUNTIME_DIR: undefined, VISUAL: undefined, EDITOR: editor } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('re-encrypted tls/note.age');
    const [file, mode, dirMode, ...before] = (await readFile(log, 'utf8')).trim().split(' ');
    expect(file.startsWith(join(home, '.cache', 'edgectl') + '/')).toBe(true);
    expect([mode, dirMode, before.join(' ')]).toEqual(['600', '700', 'version one']);
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
    const { secretOpener } = await import('../../src/lib/secrets/opener.js');
    expect((await secretOpener({ flag: demo }).open('tls/note.age', await readFile(join(fl, 'tls', 'note.age')))).toString()).toBe('version two\n');
    // An editor that fails leaves the secret as it was.
    const same = await readFile(join(fl, 'tls', 'note.age'));
    const bad = await cli(['secret', 'edit', '--fleet', fl, join(fl, 'tls', 'note.age'), '--age-identity', demo], { home, env: { XDG_RUNTIME_DIR: undefined, VISUAL: 'false' } });
    expect(bad.code).toBe(1);
    expect(await readFile(join(fl, 'tls', 'note.age'))).toEqual(same);
  });

  it('an edge node may not serve HTTP and HTTPS on one port', async () => {
    const fl = join(dir, 'ports');
    await cp(fleet, fl, { recursive: true });
    const fy = await readFile(join(fl, 'fleet.yaml'), 'utf8');
    await writeFile(join(fl, 'fleet.yaml'), fy.replace('https: { port: 443 }', 'https: { port: 80 }'));
    const r = await cli(['validate', '--fleet', fl, '--json'], bare());
    expect(r.code).toBe(1);
    expect(json(r).problems.filter((p: { rule: string }) => p.rule === 'https-port-conflict').length).toBe(7);
  });

  it('secret set refuses a name without .age, a path outside the fleet, and plaintext from inside the fleet', async () => {
    const a = await cli(['secret', 'set', '--fleet', fleet, join(fleet, 'tls', 'key.pem')], { input: 'x' });
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('a secret\'s file name ends in .age');
    const b = await cli(['secret', 'set', '--fleet', fleet, join(dir, 'elsewhere.age')], { input: 'x' });
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('is not inside the fleet');
    await writeFile(join(fleet, 'plain.txt'), 'secret\n');
    const c = await cli(['secret', 'set', '--fleet', fleet, join(fleet, 'tls', 'x.age'), '--from', join(fleet, 'plain.txt')]);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('is inside the fleet repo');
    await rm(join(fleet, 'plain.txt'));
    await expect(readFile(join(fleet, 'tls', 'x.age'))).rejects.toThrow(/ENOENT/);
  });

  it('the certificate must be a chain that covers the app\'s domains', async () => {
    const bad = join(dir, 'certs');
    await cp(fleet, bad, { recursive: true });
    const apps = await readFile(join(bad, 'apps', 'acme.yaml'), 'utf8');
    await writeFile(join(bad, 'apps', 'acme.yaml'), apps.replace('domains: [www.acme.example, acme.example]', 'domains: [www.acme.example, shop.acme.example]'));
    const r = await cli(['validate', '--fleet', bad, '--json'], bare());
    expect(r.code).toBe(1);
    const p = json(r).problems.find((x: { rule: string }) => x.rule === 'tls-certificate-names');
    expect(p).toMatchObject({ file: 'apps/acme.yaml', path: 'spec.tls.certificate' });
    expect(p.message).toContain('does not cover the app\'s domain "shop.acme.example"');
    // Leaf after the CA: out of order.
    const chain = await readFile(join(bad, 'tls', 'acme', 'www.acme.example.pem'), 'utf8');
    await writeFile(join(bad, 'tls', 'acme', 'www.acme.example.pem'), (await readFile(join(bad, 'tls', 'demo-ca.pem'), 'utf8')) + chain);
    const o = await cli(['validate', '--fleet', bad, '--json'], bare());
    expect(json(o).problems.map((x: { message: string }) => x.message).join('\n')).toContain('starts with a CA certificate');
  });
});
