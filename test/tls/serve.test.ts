import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { localPortBlock, type LocalPortBlock } from '../helpers/local-ports.js';
import { get, killNginx } from '../apply/helpers.js';
import { httpRequest } from '../render/helpers.js';
import { encryptTo } from '../../src/lib/secrets/age.js';
import { makeCa, makeIdentity, makeLeaf, tlsGet, writeTlsFleet } from './helpers.js';

/** Apps served over HTTPS by a real nginx on this machine (--local), with certificates from a CA of the test's own. */
const ADDR = '127.0.2.17';
let dir: string;
let fleet: string;
let nodes: string;
let ca: { cert: string; key: string };
let caPem: Buffer;
let id: { file: string; recipient: string };
let PORTS: LocalPortBlock;
let flags: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-tls-serve-'));
  await chmod(dir, 0o755);
  fleet = join(dir, 'fleet');
  nodes = join(dir, 'nodes');
  const scratch = join(dir, 'scratch');
  await import('node:fs/promises').then((f) => f.mkdir(scratch));
  ca = makeCa(scratch);
  caPem = await readFile(ca.cert);
  id = await makeIdentity(join(scratch, 'id.txt'));
  await writeTlsFleet(fleet, {
    ca, recipients: [id.recipient],
    apps: [
      { name: 'www', domains: ['www.acme.example', 'acme.example'], hsts: 600 },
      { name: 'dev', domains: ['dev.acme.example'], redirect: false },
    ],
    plain: ['plain'],
  });
  PORTS = await localPortBlock(['edge-1'], ADDR);
  flags = ['--fleet', fleet, '--local', nodes, ...PORTS.flags, '--local-address', ADDR, '--age-identity', id.file];
});
afterAll(async () => {
  if (dir) await killNginx(nodes);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('HTTPS for tenant domains with given certificates (real nginx)', { timeout: 180_000 }, () => {
  it('serves every TLS app over HTTPS with a chain the CA verifies, for each of its names', async () => {
    const r = await cli(['apply', ...flags, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(json(r).summary.applied).toBe(1);
    const { https } = PORTS.of('edge-1');
    for (const name of ['www.acme.example', 'acme.example', 'dev.acme.example']) {
      const a = await tlsGet(ADDR, https, name, caPem);
      expect(a.authorized, name).toBe(true);
      expect(a.status, name).toBe(200);
      expect(a.body).toContain(name.startsWith('dev') ? 'dev over TLS' : 'www over TLS');
      expect(['TLSv1.2', 'TLSv1.3']).toContain(a.protocol);
    }
    // A client that does not trust the CA refuses the chain: the name and chain really are checked.
    await expect(tlsGet(ADDR, https, 'www.acme.example', Buffer.from(''))).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    // A name no app serves gets no certificate at all (never another tenant's).
    await expect(tlsGet(ADDR, https, 'other.example', caPem)).rejects.toThrow(/alert|handshake|reset|ECONNRESET|unrecognized name/i);
    // HSTS only where asked.
    expect((await tlsGet(ADDR, https, 'www.acme.example', caPem)).headers['strict-transport-security']).toBe('max-age=600');
    expect((await tlsGet(ADDR, https, 'dev.acme.example', caPem)).headers['strict-transport-security']).toBeUndefined();
  });

  it('redirects HTTP to HTTPS (301), except an app with redirect: false; node endpoints stay on HTTP', async () => {
    const { http, https } = PORTS.of('edge-1');
    const res = await httpRequest({ addr: ADDR, port: http }, 'GET', 'www.acme.example', '/some/page?x=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe(`https://www.acme.example:${https}/some/page?x=1`);
    expect(await get(ADDR, http, 'dev.acme.example')).toMatchObject({ status: 200, body: expect.stringContaining('dev over TLS') });
    expect(await get(ADDR, http, 'plain.acme.example')).toMatchObject({ status: 200, body: expect.stringContaining('plain in plain HTTP') });
    // apply's health check and config check are plain HTTP: still answered on the redirecting server.
    expect((await get(ADDR, http, 'www.acme.example', '/healthz')).body).toBe('ok acme/www\n');
    expect((await get(ADDR, http, 'www.acme.example', '/.edgectl/config')).status).toBe(200);
  });

  it('writes the key 0600 (the chain 0644) on the node, and drift agrees with the manifest', async () => {
    const tlsDir = join(nodes, 'edge-1', 'current', 'nginx', 'tls', 'acme.www');
    expect((await stat(join(tlsDir, 'key.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(tlsDir, 'chain.pem'))).mode & 0o777).toBe(0o644);
    const m = JSON.parse(await readFile(join(nodes, 'edge-1', 'current', 'manifest.json'), 'utf8'));
    expect(m.files['nginx/tls/acme.www/key.pem'].mode).toBe(0o600);
    const d = await cli(['drift', ...flags, '--json']);
    expect(d.code, d.stdout + d.stderr).toBe(0);
    // A key made readable on the node is drift, and drift --fix puts 0600 back.
    await chmod(join(tlsDir, 'key.pem'), 0o644);
    const d2 = await cli(['drift', ...flags, '--json']);
    expect(d2.code).toBe(2);
    expect(d2.stdout).toContain('nginx/tls/acme.www/key.pem');
    const fix = await cli(['drift', ...flags, '--fix', '--yes', '--json']);
    expect(json(fix).fix.nodes[0], fix.stderr).toMatchObject({ outcome: 'applied', notes: ['repaired mode changed: nginx/tls/acme.www/key.pem'] });
    expect((await stat(join(tlsDir, 'key.pem'))).mode & 0o777).toBe(0o600);
    expect((await cli(['drift', ...flags])).code).toBe(0);
  });

  it('a changed key and certificate is a new nginx config id: apply reloads nginx, which serves the new certificate', async () => {
    const { http, https } = PORTS.of('edge-1');
    const before = await tlsGet(ADDR, https, 'www.acme.example', caPem);
    const idBefore = (await get(ADDR, http, 'www.acme.example', '/.edgectl/config')).body.trim();
    const leaf = makeLeaf(join(dir, 'scratch'), ca, ['www.acme.example', 'acme.example']);
    await writeFile(join(fleet, 'tls', 'www.pem'), leaf.chain);
    await writeFile(join(fleet, 'tls', 'www.key.age'), await encryptTo([id.recipient], leaf.key));
    const plan = await cli(['plan', ...flags, '--json']);
    const n = json(plan).nodes[0];
    expect(n.action).toBe('update');
    expect(n.files.changed).toEqual(expect.arrayContaining(['nginx/tls/acme.www/chain.pem', 'nginx/tls/acme.www/key.pem']));
    const r = await cli(['apply', ...flags, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const idAfter = (await get(ADDR, http, 'www.acme.example', '/.edgectl/config')).body.trim();
    expect(idAfter).not.toBe(idBefore);
    expect(idAfter).toBe(n.desired.nginxConfigId);
    // apply returns once the old workers stopped taking connections: the first new TLS
    // connection meets a new worker, with the new certificate.
    const after = await tlsGet(ADDR, https, 'www.acme.example', caPem);
    expect(after.authorized).toBe(true);
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });
});
