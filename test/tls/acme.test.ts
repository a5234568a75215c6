import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json, type CliResult } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { get, killNginx } from '../apply/helpers.js';
import { decryptWith } from '../../src/lib/secrets/age.js';
import { keyLines, makeIdentity, tlsGet } from './helpers.js';
import { HOOK_SCRIPT, startPebble, type Pebble } from './acme-pebble.js';

/**
 * ACME certificates from a real pebble (DNS-01 through challtestsrv, set by the fleet's hook),
 * served by a real nginx (--local). pebble issues 10-day certificates: renewal is due at the
 * default 30 days, not at --days 5.
 */
const ADDR = '127.0.9.17';
const VALIDITY_S = 10 * 86_400;
let dir: string;
let fleet: string;
let nodes: string;
let pebble: Pebble;
let id: { file: string; identity: string; recipient: string };
let PORTS: LocalPortBlock;
let flags: string[];
let hookLog: string;
const outputs: CliResult[] = [];

async function run(args: string[]): Promise<CliResult> {
  const r = await cli(args, { timeout: 180_000 });
  outputs.push(r);
  return r;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-acme-'));
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  nodes = join(dir, 'nodes');
  const scratch = join(dir, 'scratch');
  await mkdir(scratch);
  pebble = await startPebble(scratch, ADDR, { validitySeconds: VALIDITY_S });
  id = await makeIdentity(join(scratch, 'id.txt'));
  hookLog = join(scratch, 'hook.log');
  await writeFile(join(scratch, 'dns-hook.mjs'), HOOK_SCRIPT);
  await mkdir(join(fleet, 'tls', 'acme'), { recursive: true });
  await writeFile(join(fleet, 'tls', 'acme', 'directory-ca.pem'), pebble.apiCa);
  await writeFile(join(fleet, 'fleet.yaml'), [
    'apiVersion: edgectl/v1', 'kind: Fleet', 'metadata: { name: t }', 'spec:', '  hub: { url: "http://127.0.0.1:9/v1/forward" }',
    `  secrets: { recipients: [${id.recipient}] }`,
    '  acme:', `    directory: ${pebble.directory}`, '    email: ops@shop.example', '    accountKey: tls/acme/account.key.age', '    directoryCa: tls/acme/directory-ca.pem',
    `    dns01: { hook: [${JSON.stringify(process.execPath)}, ${JSON.stringify(join(scratch, 'dns-hook.mjs'))}, ${JSON.stringify(pebble.challtest)}, ${JSON.stringify(hookLog)}] }`, '',
  ].join('\n'));
  await writeFile(join(fleet, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: shop }\nspec: {}\n');
  await writeFile(join(fleet, 'nodes.yaml'), 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: edge-1 }\nspec: { role: edge, address: 192.0.2.1 }\n');
  await mkdir(join(fleet, 'sites', 'www'), { recursive: true });
  await writeFile(join(fleet, 'sites', 'www', 'index.html'), '<h1>shop over ACME</h1>\n');
  await writeFile(join(fleet, 'apps.yaml'), [
    'apiVersion: edgectl/v1', 'kind: App', 'metadata: { name: www }', 'spec:', '  tenant: shop', '  type: static', '  domains: [www.shop.example, shop.example, "*.cdn.shop.example"]',
    '  static: { path: sites/www }', '  tls: { acme: true, certificate: tls/acme/www.pem, key: tls/acme/www.key.age }', '',
  ].join('\n'));
  PORTS = await localPortBlock(['edge-1'], ADDR);
  flags = ['--fleet', fleet, '--local', nodes, ...PORTS.flags, '--local-address', ADDR, '--age-identity', id.file];
}, 60_000);

afterAll(async () => {
  if (nodes) await killNginx(nodes);
  await pebble?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const renew = (...extra: string[]) => run(['certs', 'renew', '--fleet', fleet, '--age-identity', id.file, ...extra]);

describe('ACME certificates from pebble, served by a real nginx', { timeout: 300_000 }, () => {
  it('before the first issue: valid (even --strict), plan warns "no certificate yet", apply serves the app over HTTP only', async () => {
    const v = await run(['validate', '--fleet', fleet, '--strict', '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(json(v).problems).toEqual([]);
    const p = await run(['plan', ...flags, '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(json(p).certificates).toEqual([expect.objectContaining({ app: 'www', acme: true, state: 'missing' })]);
    expect(p.stderr).toContain('warning shop/www: no certificate yet, served over HTTP only: run `edgectl certs renew`');
    expect((await run(['plan', ...flags])).stderr).toContain('shop/www: no certificate yet (tls/acme/www.pem)');
    const a = await run(['apply', ...flags, '--yes']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await get(ADDR, PORTS.of('edge-1').http, 'www.shop.example')).toMatchObject({ status: 200, body: expect.stringContaining('shop over ACME') });
    await expect(tlsGet(ADDR, PORTS.of('edge-1').https, 'www.shop.example', await pebble.root())).rejects.toThrow();
  });

  it('certs renew lists what is due without --yes (exit 2, nothing written), issues with --yes through the DNS-01 hook', async () => {
    const dry = await renew('--json');
    expect(dry.code, dry.stderr).toBe(2);
    expect(json(dry)).toMatchObject({ due: 1, renewed: 0, written: [], items: [{ app: 'www', reason: 'missing', outcome: 'due' }] });
    await expect(readFile(join(fleet, 'tls', 'acme', 'account.key.age'))).rejects.toThrow();

    const r = await renew('--yes', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const out = json(r);
    expect(out).toMatchObject({ renewed: 1, failed: 0, accountCreated: true, items: [{ app: 'www', outcome: 'renewed' }] });
    expect(out.written.sort()).toEqual(['tls/acme/account.key.age', 'tls/acme/www.key.age', 'tls/acme/www.pem']);
    // The hook set and cleared one TXT record per name (the wildcard's under its base name).
    const hooked = (await readFile(hookLog, 'utf8')).trim().split('\n');
    for (const d of ['www.shop.example', 'shop.example', 'cdn.shop.example']) {
      expect(hooked).toContain(`set ${d} _acme-challenge.${d}`);
      expect(hooked).toContain(`clear ${d} _acme-challenge.${d}`);
    }
    // Keys only encrypted on disk; the chain is leaf + pebble's intermediate, for every domain.
    for (const f of ['account.key.age', 'www.key.age']) expect((await readFile(join(fleet, 'tls', 'acme', f), 'utf8'))).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    const leaf = new X509Certificate(await readFile(join(fleet, 'tls', 'acme', 'www.pem')));
    expect(leaf.subjectAltName).toContain('DNS:www.shop.example');
    expect(leaf.subjectAltName).toContain('DNS:*.cdn.shop.example');
    const left = Date.parse(leaf.validTo) - Date.now();
    expect(left).toBeGreaterThan(VALIDITY_S * 1000 - 86_400_000);
    expect(left).toBeLessThanOrEqual(VALIDITY_S * 1000 + 60_000);

    const v = await run(['validate', '--fleet', fleet, '--json']);
    // 10 days left: under the 14-day warning.
    expect(json(v).problems).toEqual([expect.objectContaining({ rule: 'tls-certificate-expiring' })]);
  });

  it('apply ships it: nginx serves every name over HTTPS with a chain pebble\'s root verifies; HTTP redirects', async () => {
    const p = await run(['plan', ...flags, '--json']);
    const c = json(p).certificates[0];
    expect(c).toMatchObject({ app: 'www', acme: true, state: 'expiring' });
    expect(c.days).toBeGreaterThanOrEqual(8);
    expect(c.days).toBeLessThanOrEqual(10);
    const pt = await run(['plan', ...flags]);
    expect(pt.stderr).toMatch(/shop\/www: \d+ day\(s\) to expiry/);
    expect(pt.stderr).toMatch(/warning shop\/www: certificate tls\/acme\/www\.pem expires in \d+ day\(s\): run `edgectl certs renew`/);
    const a = await run(['apply', ...flags, '--yes']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const root = await pebble.root();
    const { http, https } = PORTS.of('edge-1');
    for (const name of ['www.shop.example', 'shop.example', 'img.cdn.shop.example']) {
      const r = await tlsGet(ADDR, https, name, root);
      expect(r.authorized, name).toBe(true);
      expect(r.status).toBe(200);
      expect(r.body).toContain('shop over ACME');
    }
    // Not trusted without pebble's root: the chain is really checked.
    await expect(tlsGet(ADDR, https, 'www.shop.example', pebble.apiCa)).rejects.toThrow(/unable to (get|verify)|self[- ]signed/i);
    // HTTP redirects (apply returned once nginx's old workers, HTTP only, stopped taking connections).
    const redirect = (await get(ADDR, http, 'www.shop.example', '/x')).status;
    expect(redirect).toBe(301);
    // status reads the leaf in the node's current release: days to expiry, and under 14 a problem.
    const st = await run(['status', ...flags, '--json']);
    const node = json(st).nodes[0];
    expect(node.certs).toEqual([{ app: 'shop.www', notAfter: c.notAfter, days: c.days }]);
    expect(node.problems).toContain(`certificate shop.www expires in ${c.days} day(s)`);
  });

  it('nothing due at --days 5 (exit 0, nothing written); at the default 30 a renewal reaches nginx while a client loops without one error', async () => {
    const before = await readFile(join(fleet, 'tls', 'acme', 'www.pem'));
    const none = await renew('--days', '5', '--yes', '--json');
    expect(none.code, none.stderr).toBe(0);
    expect(json(none)).toMatchObject({ renewed: 0, due: 0, written: [], items: [{ outcome: 'skipped', reason: 'ok' }] });
    expect(await readFile(join(fleet, 'tls', 'acme', 'www.pem'))).toEqual(before);

    const root = await pebble.root();
    const { https } = PORTS.of('edge-1');
    const first = await tlsGet(ADDR, https, 'www.shop.example', root);
    let stop = false;
    const errors: string[] = [];
    const seen = new Set<string>();
    let n = 0;
    const loop = (async () => {
      while (!stop) {
        try {
          const r = await tlsGet(ADDR, https, 'www.shop.example', root);
          if (r.status !== 200 || !r.authorized) errors.push(`status ${r.status}`);
          seen.add(r.fingerprint);
          n++;
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    })();
    const r = await renew('--yes', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(json(r)).toMatchObject({ renewed: 1, accountCreated: false, items: [{ reason: 'expiring', outcome: 'renewed' }] });
    const a = await run(['apply', ...flags, '--yes']);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const after = await tlsGet(ADDR, https, 'www.shop.example', root);
    // Let the loop itself reach the new certificate (under load its request in flight may be an old one).
    for (const until = Date.now() + 10_000; !seen.has(after.fingerprint) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await loop;
    expect(errors).toEqual([]);
    expect(n).toBeGreaterThan(20);
    expect(after.fingerprint).not.toBe(first.fingerprint);
    // The loop saw the old certificate and then the new one: it ran through the reload.
    expect(seen).toEqual(new Set([first.fingerprint, after.fingerprint]));
  });

  it('a failing hook fails the issuance (exit 1, named), and writes nothing', async () => {
    const pem = await readFile(join(fleet, 'tls', 'acme', 'www.pem'));
    const fy = join(fleet, 'fleet.yaml');
    const good = await readFile(fy, 'utf8');
    await writeFile(fy, good.replace(/dns01: \{ hook: \[.*\] \}/, `dns01: { hook: [${JSON.stringify(process.execPath)}, "-e", "console.error('no zone here'); process.exit(3)"] }`));
    try {
      const r = await renew('--yes', '--days', '60');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/failed shop\/www: the DNS-01 hook .* exited with status 3: no zone here/);
      expect(await readFile(join(fleet, 'tls', 'acme', 'www.pem'))).toEqual(pem);
      // A hook with a relative program outside the repo is refused by validate.
      await writeFile(fy, good.replace(/dns01: \{ hook: \[.*\] \}/, 'dns01: { hook: ["../hook"] }'));
      const v = await run(['validate', '--fleet', fleet]);
      expect(v.code).toBe(1);
      expect(v.stdout + v.stderr).toMatch(/fleet\.yaml:\d+:\d+.*spec\.acme\.dns01\.hook.*absolute path, a path starting with \.\//);
    } finally {
      await writeFile(fy, good);
    }
  });

  it('also due: a domain the certificate does not cover, and a key that is not the certificate\'s (it decrypts to check)', async () => {
    const apps = join(fleet, 'apps.yaml');
    const good = await readFile(apps, 'utf8');
    const keyFile = join(fleet, 'tls', 'acme', 'www.key.age');
    try {
      await writeFile(apps, good.replace('shop.example, "*.cdn', 'shop.example, new.shop.example, "*.cdn'));
      const names = await renew('--days', '5', '--json');
      expect(names.code, names.stderr).toBe(2);
      expect(json(names).items[0]).toMatchObject({ reason: 'names', outcome: 'due' });
      // A warning, not an error: the fleet stays valid, so renew can run and fix it.
      const v = await run(['validate', '--fleet', fleet, '--json']);
      expect(v.code).toBe(0);
      expect(json(v).problems).toEqual(expect.arrayContaining([expect.objectContaining({ rule: 'tls-certificate-names', severity: 'warning', message: expect.stringContaining('"new.shop.example"') })]));
      const fixed = await renew('--days', '5', '--yes', '--json');
      expect(fixed.code, fixed.stderr).toBe(2);
      expect(json(fixed).items[0]).toMatchObject({ reason: 'names', outcome: 'renewed' });
      expect(new X509Certificate(await readFile(join(fleet, 'tls', 'acme', 'www.pem'))).subjectAltName).toContain('DNS:new.shop.example');
      expect((await renew('--days', '5')).code).toBe(0);
      await writeFile(apps, good);
      const key = await readFile(keyFile);
      const other = await readFile(join(fleet, 'tls', 'acme', 'account.key.age'));
      await writeFile(keyFile, other); // a valid secret, but the account's key, not the certificate's
      const mismatch = await renew('--days', '5', '--json');
      expect(mismatch.code, mismatch.stderr).toBe(2);
      expect(json(mismatch).items[0]).toMatchObject({ reason: 'key-mismatch', outcome: 'due' });
      await writeFile(keyFile, key);
    } finally {
      await writeFile(apps, good);
    }
    expect((await renew('--days', '5')).code).toBe(0);
  });

  it('a key without its chain (a first issue cut short) keeps the fleet valid and HTTP-only, and renew issues both', async () => {
    const pem = join(fleet, 'tls', 'acme', 'www.pem');
    const saved = await readFile(pem);
    await rm(pem);
    const v = await run(['validate', '--fleet', fleet, '--json']);
    expect(v.code, v.stdout).toBe(0);
    expect(json(v).problems).toEqual([expect.objectContaining({ rule: 'tls-file-missing', severity: 'warning' })]);
    const r = await renew('--days', '5', '--yes', '--json');
    expect(r.code, r.stderr).toBe(2);
    expect(json(r).items[0]).toMatchObject({ reason: 'missing', outcome: 'renewed' });
    expect(await readFile(pem)).not.toEqual(saved);
    expect((await renew('--days', '5')).code).toBe(0);
  });

  it('no output of validate, plan, renew or apply holds a byte of the decrypted keys, nor does any file of the fleet', async () => {
    const d = await run(['plan', ...flags, '--diff']);
    expect(d.code).toBe(0);
    const lines: string[] = [];
    for (const f of ['www.key.age', 'account.key.age']) {
      const key = await decryptWith([id.identity], await readFile(join(fleet, 'tls', 'acme', f)));
      expect(key?.toString()).toContain('PRIVATE KEY');
      lines.push(...keyLines(key!));
    }
    expect(lines.length).toBeGreaterThan(2);
    expect(outputs.length).toBeGreaterThan(10);
    for (const o of outputs) for (const l of lines) expect(o.stdout + o.stderr).not.toContain(l);
    // The plaintext keys are nowhere in the fleet repo (the keys are only there encrypted).
    const all = execFileSync('find', [fleet, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n');
    expect(all.length).toBeGreaterThan(6);
    for (const f of all) {
      const text = await readFile(f, 'latin1');
      for (const l of lines) expect(text, f).not.toContain(l);
    }
  });
});
