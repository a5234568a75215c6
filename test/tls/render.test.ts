import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { guardProblems } from '../../src/lib/nginx/guard.js';
import { renderFleet, type Bundle } from '../../src/lib/render/index.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';
import { makeCa, makeIdentity, writeTlsFleet } from './helpers.js';

/** What render writes for TLS apps (no nginx needed): the choices of spec.tls, and nothing for nodes without one. */
let dir: string;
let bundle: Bundle;
let idFile: string;
const text = (p: string) => bundle.files.find((f) => f.path === p)!.data.toString();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tls-render-'));
  await mkdir(join(dir, 'scratch'));
  const ca = makeCa(join(dir, 'scratch'));
  const id = await makeIdentity(join(dir, 'scratch', 'id.txt'));
  idFile = id.file;
  const fleet = join(dir, 'fleet');
  await writeTlsFleet(fleet, {
    ca, recipients: [id.recipient],
    apps: [{ name: 'www', domains: ['www.acme.example'], ocsp: true }, { name: 'dev', domains: ['dev.acme.example'], redirect: false }],
  });
  const apps = await readFile(join(fleet, 'apps.yaml'), 'utf8');
  await writeFile(join(fleet, 'apps.yaml'), apps.replace('key: tls/www.key.age', 'key: tls/www.key.age, hsts: { maxAge: 31536000, includeSubDomains: true }'));
  await writeFile(join(fleet, 'fleet.yaml'), (await readFile(join(fleet, 'fleet.yaml'), 'utf8')).replace('spec:\n', 'spec:\n  defaults: { https: { port: 8443 } }\n'));
  [bundle] = await renderFleet(await loadFleet(fleet), { edgectlVersion: 'test', secrets: secretOpener({ flag: idFile }) });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('render: HTTPS servers from spec.tls', () => {
  it('Mozilla intermediate at http level, and a default HTTPS server that shows no certificate', () => {
    const conf = text('nginx/nginx.conf');
    expect(conf).toContain('    ssl_protocols TLSv1.2 TLSv1.3;\n');
    expect(conf).toContain('ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;');
    expect(conf).toMatch(/ssl_prefer_server_ciphers off;\n\s+ssl_session_cache shared:edgectl_tls:10m;\n\s+ssl_session_timeout 1d;\n\s+ssl_session_tickets off;/);
    expect(conf).toMatch(/listen 8443 ssl default_server;\n\s+ssl_reject_handshake on;/);
  });

  it('OCSP stapling only for a chain with a responder; HSTS only when asked; redirect per app', () => {
    const www = text('nginx/conf.d/acme.www.conf');
    const dev = text('nginx/conf.d/acme.dev.conf');
    expect(www).toContain('    listen 8443 ssl http2;\n    ssl_certificate tls/acme.www/chain.pem;\n    ssl_certificate_key tls/acme.www/key.pem;\n    ssl_stapling on;\n    ssl_stapling_verify on;\n');
    expect(dev).not.toContain('ssl_stapling');
    expect(www).toContain('add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;');
    expect(dev).not.toContain('Strict-Transport-Security');
    // www: HTTPS only, and a plain-HTTP server that redirects (to the non-default port); dev: both ports, no redirect.
    expect(www.match(/^\s+listen /gm)).toHaveLength(2);
    expect(www).toContain('return 301 https://$host:8443$request_uri;');
    expect(dev).toContain('    listen 8443 ssl http2;\n    listen 80;\n');
    expect(dev).not.toContain('return 301');
    for (const f of bundle.files.filter((x) => x.path.endsWith('.conf'))) expect(guardProblems(f.data), f.path).toEqual([]);
  });

  it('the key is a 0600 file under nginx/ (so it is part of the config id), the chain 0644', () => {
    expect(bundle.manifest.files['nginx/tls/acme.www/key.pem'].mode).toBe(0o600);
    expect(bundle.manifest.files['nginx/tls/acme.www/chain.pem'].mode).toBe(0o644);
    expect(text('nginx/tls/acme.www/key.pem')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('the nginx guard reads certificates and keys only from inside the bundle', () => {
    expect(guardProblems('ssl_certificate_key /etc/ssl/private/other.key;')[0]?.message).toMatch(/only from inside the bundle's nginx\//);
    expect(guardProblems('ssl_certificate ../../etc/passwd;')[0]?.message).toMatch(/only from inside/);
    expect(guardProblems('ssl_certificate tls/acme.www/chain.pem;')).toEqual([]);
  });
});
