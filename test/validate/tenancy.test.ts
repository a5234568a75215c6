import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBundles } from '../../src/lib/render/check.js';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, exampleCopy, mutate, STACK_TRACE, tempDir, validateDir } from './helpers.js';

afterAll(cleanTemps);

/** fleet.example plus files; the problems of the given rules. */
async function problemsWith(files: Record<string, string>, rules: RegExp) {
  const dir = await exampleCopy();
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
  return (await validateDir(dir)).problems.filter((p) => rules.test(p.rule)).map((p) => ({ rule: p.rule, file: p.file, path: p.path, message: p.message }));
}

const app = (name: string, tenant: string, domains: string[], extra = '') =>
  `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  tenant: ${tenant}\n  type: static\n  domains: [${domains.map((d) => JSON.stringify(d)).join(', ')}]\n  static: { path: sites/${name} }\n${extra}`;

describe('tenants own their zones', { timeout: 120_000 }, () => {
  // fleet.example: globex serves *.shelves.globex.example and api.globex.example.
  it.each([
    ['a name under another tenant\'s wildcard', ['a.shelves.globex.example']],
    ['a name deep under it', ['x.y.z.shelves.globex.example']],
    ['the wildcard\'s own apex', ['shelves.globex.example']],
    ['a wildcard inside another tenant\'s wildcard', ['*.eu.shelves.globex.example']],
  ])('%s is refused, on both sides', async (_what, domains) => {
    const found = await problemsWith({ 'apps/squat.yaml': app('acme-squat', 'acme', domains) }, /^domain-/);
    expect(found).toEqual([
      { rule: 'domain-zone-conflict', file: 'apps/globex.yaml', path: 'spec.domains[0]', message: expect.stringContaining(`wildcard *.shelves.globex.example claims the zone shelves.globex.example, where tenant "acme" serves "${domains[0]}"`) },
      { rule: 'domain-zone-conflict', file: 'apps/squat.yaml', path: 'spec.domains[0]', message: expect.stringContaining(`is in the zone of tenant "globex"'s wildcard *.shelves.globex.example (app "globex-shelves"`) },
    ]);
  });

  it('a wildcard over another tenant\'s names and wildcards is refused for each of them', async () => {
    const found = await problemsWith({ 'apps/squat.yaml': app('acme-squat', 'acme', ['*.globex.example']) }, /^domain-/);
    expect(found.map((p) => `${p.file} ${p.path}`)).toEqual(['apps/globex.yaml spec.domains[0]', 'apps/globex.yaml spec.domains[0]', 'apps/squat.yaml spec.domains[0]']);
    expect(found[0].message).toMatch(/"api.globex.example" is in the zone of tenant "acme"'s wildcard \*\.globex\.example/);
    expect(found[1].message).toMatch(/"\*\.shelves\.globex\.example" is in the zone of tenant "acme"'s wildcard/);
  });

  it('the same tenant may nest names under its own wildcard; other tenants may serve names beside it', async () => {
    expect(await problemsWith({
      'apps/mine.yaml': app('globex-eu', 'globex', ['eu.shelves.globex.example', '*.x.shelves.globex.example']),
      'apps/beside.yaml': app('acme-beside', 'acme', ['globex.example', 'shelvesx.globex.example', 'www.globex.example']),
    }, /^domain-/)).toEqual([]);
  });

  it('through the CLI: exit 1, both apps named', async () => {
    const dir = await exampleCopy();
    await writeFile(path.join(dir, 'apps/squat.yaml'), app('acme-squat', 'acme', ['pos.shelves.globex.example']));
    const r = cliSync(['validate', '--fleet', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/apps\/squat\.yaml:\d+:\d+ error spec\.domains\[0\]: domain "pos\.shelves\.globex\.example" is in the zone of tenant "globex"'s wildcard \*\.shelves\.globex\.example \(app "globex-shelves", apps\/globex\.yaml:\d+\) \[domain-zone-conflict\]/);
    expect(r.stdout).toMatch(/apps\/globex\.yaml:\d+:\d+ error spec\.domains\[0\]: wildcard \*\.shelves\.globex\.example claims the zone/);
  });
});

describe('tenants own their paths', { timeout: 120_000 }, () => {
  const withPath = (p: string, tenant = 'acme') => `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: acme-x }\nspec:\n  tenant: ${tenant}\n  type: static\n  domains: [x.acme.example]\n  static: { path: ${p} }\n`;
  it.each([
    ['tenants', /"tenants" is not under sites\//],
    ['nodes', /not under sites\//],
    ['templates/nginx', /not under sites\//],
    ['sites', /not under sites\//],
    ['Sites/acme-www', /not under sites\//],
  ])('static.path %s: not under sites/', async (p, message) => {
    const found = await problemsWith({ 'apps/x.yaml': withPath(p) }, /^payload-path/);
    expect(found).toEqual([{ rule: 'payload-path-outside-sites', file: 'apps/x.yaml', path: 'spec.static.path', message: expect.stringMatching(message) }]);
  });

  it.each([
    ['sites/initech-portal', /"sites\/initech-portal" is the directory "sites\/initech-portal" of tenant "initech"/, /"sites\/initech-portal" is the directory "sites\/initech-portal" of tenant "acme"/],
    ['sites/initech-portal/sub', /is inside the directory "sites\/initech-portal" of tenant "initech"/, /contains the directory "sites\/initech-portal\/sub" of tenant "acme"/],
    ['sites/INITECH-Portal', /is the directory "sites\/initech-portal" of tenant "initech"/, /is the directory "sites\/INITECH-Portal" of tenant "acme"/],
  ])('static.path %s: another tenant\'s directory, both apps told', async (p, mine, theirs) => {
    const found = await problemsWith({ 'apps/x.yaml': withPath(p) }, /^payload-path/);
    expect(found).toEqual([
      { rule: 'payload-path-conflict', file: 'apps/initech.yaml', path: 'spec.fastcgi.path', message: expect.stringMatching(theirs) },
      { rule: 'payload-path-conflict', file: 'apps/x.yaml', path: 'spec.static.path', message: expect.stringMatching(mine) },
    ]);
  });

  it('a directory around another tenant\'s, and one holding a fleet document, are refused', async () => {
    const around = await problemsWith({ 'apps/x.yaml': withPath('sites/i', 'acme'), 'apps/y.yaml': app('initech-y', 'initech', ['y.initech.example']).replace('sites/initech-y', 'sites/i/y') }, /^payload-path/);
    expect(around).toEqual([
      { rule: 'payload-path-conflict', file: 'apps/x.yaml', path: 'spec.static.path', message: expect.stringMatching(/"sites\/i" contains the directory "sites\/i\/y" of tenant "initech"/) },
      { rule: 'payload-path-conflict', file: 'apps/y.yaml', path: 'spec.static.path', message: expect.stringMatching(/"sites\/i\/y" is inside the directory "sites\/i" of tenant "acme"/) },
    ]);
    const docs = await problemsWith({ 'apps/x.yaml': withPath('sites/acme-x'), 'sites/acme-x/extra.yaml': 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: extra }\n' }, /^payload-path/);
    expect(docs).toEqual([{ rule: 'payload-path-has-fleet-documents', file: 'apps/x.yaml', path: 'spec.static.path', message: expect.stringMatching(/holds the fleet document sites\/acme-x\/extra.yaml/) }]);
  });

  it('the same tenant may share and nest its own directories', async () => {
    expect(await problemsWith({ 'apps/x.yaml': withPath('sites/acme-www/sub'), 'sites/acme-www/sub/a.html': 'a' }, /^payload-path/)).toEqual([]);
  });
});

describe('generated names cannot collide', { timeout: 240_000 }, () => {
  it('tenant acme--x\'s app www and tenant acme\'s app x--www (and their Kong consumers) render, and pass nginx -t and deck validate', async () => {
    const dir = await exampleCopy();
    // Tenant acme--x with consumer www, tenant acme with consumer x--www: "--" joined both to acme--x--www.
    await writeFile(path.join(dir, 'tenants/more.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme--x }\nspec:\n  consumers: [{ name: www, keyEnv: ACMEX_WWW_KEY }]\n');
    await mutate(dir, 'tenants/tenants.yaml', '  quota: { requestsPerSecond: 500, spoolMb: 256 }\n', '  quota: { requestsPerSecond: 500, spoolMb: 256 }\n  consumers: [{ name: x--www, keyEnv: ACME_X_WWW_KEY }]\n');
    const pin = '  placement: { nodes: [bj-edge-01] }\n';
    const api = (name: string, tenant: string, domain: string) => `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  tenant: ${tenant}\n  type: api\n  domains: [${domain}]\n  upstream: { urls: ["http://198.51.100.70:9000"] }\n  routes: [{ paths: [/v1] }]\n${pin}`;
    await writeFile(path.join(dir, 'apps/collide.yaml'), [
      app('www', 'acme--x', ['www.acmex.example'], pin),
      app('x--www', 'acme', ['www2.acme.example'], pin),
      api('api', 'acme--x', 'api.acmex.example'),
      api('x--api', 'acme', 'api2.acme.example'),
    ].join('---\n'));
    for (const s of ['www', 'x--www']) {
      await mkdir(path.join(dir, 'sites', s), { recursive: true });
      await writeFile(path.join(dir, 'sites', s, 'index.html'), `<p>${s}</p>\n`);
    }
    expect(cliSync(['validate', '--fleet', dir]).code).toBe(0);
    const out = path.join(await tempDir('collide-out'), 'out');
    const r = cliSync(['render', '--fleet', dir, '--node', 'bj-edge-01', '--out', out]);
    expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code, r.stderr).toBe(0);
    const { results } = await checkBundles(out, ['bj-edge-01']);
    expect(results.filter((x) => !x.ok)).toEqual([]);
    expect(results.map((x) => x.tool).sort()).toEqual(['deck', 'nginx']);
  });
});
