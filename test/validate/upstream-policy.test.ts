import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KONG_PORTS } from '../../src/lib/fleet/upstream-policy.js';
import { KONG_PROXY } from '../../src/lib/render/nginx.js';
import { KONG_ADMIN } from '../../src/lib/release/kong.js';
import { DEFAULTS } from '../../src/lib/fleet/model.js';
import { cliSync } from '../helpers/cli.js';
import { cleanTemps, exampleCopy, mutate, STACK_TRACE } from './helpers.js';

afterAll(cleanTemps);

interface P { rule: string; file: string; line: number; path: string; message: string; hint?: string }

/** fleet.example plus one proxy app per upstream URL (apps/u-<i>.yaml), validated by the built CLI. */
async function validateUpstreams(urls: string[], fleetPolicy?: string): Promise<{ status: number | null; byUrl: Map<string, P[]> }> {
  const dir = await exampleCopy();
  if (fleetPolicy) await mutate(dir, 'fleet.yaml', '  hub:\n', `  policy: ${fleetPolicy}\n  hub:\n`);
  await Promise.all(urls.map((u, i) => writeFile(path.join(dir, `apps/u-${i}.yaml`), `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: u-${i} }\nspec:\n  tenant: acme\n  type: proxy\n  domains: [u${i}.acme.example]\n  upstream: { urls: [${JSON.stringify(u)}] }\n`)));
  const r = cliSync(['validate', '--fleet', dir, '--json']);
  expect(r.stdout + r.stderr).not.toMatch(STACK_TRACE);
  const problems = (JSON.parse(r.stdout) as { problems: P[] }).problems;
  return { status: r.code, byUrl: new Map(urls.map((u, i) => [u, problems.filter((p) => p.file === `apps/u-${i}.yaml`)])) };
}

// Every spelling of the node itself that nginx, the resolver or the URL parser would accept.
const INTERNAL: [url: string, rule: string, message: RegExp][] = [
  ['http://127.0.0.1:9000', 'upstream-internal', /127\.0\.0\.1 is a loopback address/],
  ['http://127.1:9000', 'invalid-value', /IPv4 address 127\.0\.0\.1 in a short, decimal, octal or hexadecimal form: write 127\.0\.0\.1/],
  ['http://2130706433:9000', 'invalid-value', /127\.0\.0\.1 in a short/],
  ['http://0x7f000001:9000', 'invalid-value', /127\.0\.0\.1 in a short/],
  ['http://0x7f.1:9000', 'invalid-value', /127\.0\.0\.1 in a short/],
  ['http://0177.0.0.1:9000', 'invalid-value', /127\.0\.0\.1 in a short/],
  ['http://127.0.0.1.:9000', 'invalid-value', /write 127\.0\.0\.1/],
  ['http://%31%32%37.0.0.1:9000', 'invalid-value', /write 127\.0\.0\.1/],
  ['http://0:9000', 'invalid-value', /0\.0\.0\.0 in a short/],
  ['http://127.45.6.7:9000', 'upstream-internal', /loopback/],
  ['http://0.0.0.0:9000', 'upstream-internal', /unspecified/],
  ['http://0.1.2.3:9000', 'upstream-internal', /unspecified/],
  ['http://[::1]:9000', 'upstream-internal', /::1 is a loopback address/],
  ['http://[0:0:0:0:0:0:0:1]:9000', 'upstream-internal', /::1 is a loopback address/],
  ['http://[::]:9000', 'upstream-internal', /unspecified/],
  ['http://[::ffff:127.0.0.1]:9000', 'upstream-internal', /loopback address \(IPv4 inside IPv6\)/],
  ['http://[::ffff:7f00:1]:9000', 'upstream-internal', /IPv4 inside IPv6/],
  ['http://[::127.0.0.1]:9000', 'upstream-internal', /IPv4 inside IPv6/],
  ['http://[64:ff9b::127.0.0.1]:9000', 'upstream-internal', /IPv4 inside IPv6/],
  ['http://[::ffff:169.254.169.254]/', 'upstream-internal', /link-local/],
  ['http://169.254.169.254/', 'upstream-internal', /link-local/],
  ['http://[fe80::1]:9000', 'upstream-internal', /link-local/],
  ['http://[febf::1]:9000', 'upstream-internal', /link-local/],
  ['http://localhost:9000', 'upstream-internal', /localhost/],
  ['http://LOCALHOST:9000', 'upstream-internal', /localhost/],
  ['http://api.localhost:9000', 'upstream-internal', /localhost/],
  ['http://localhost.localdomain:9000', 'upstream-internal', /localhost/],
  ['http://localhost.shop.example:9000', 'upstream-internal', /localhost/],
  ['http://backend:9000', 'upstream-internal', /single-label name/],
  ['http://printer.local:9000', 'upstream-internal', /multicast DNS/],
  // Nodes of the fleet: their ssh address, a hostname one, and the core's.
  ['http://203.0.113.10:8080', 'upstream-internal', /an address of node "bj-edge-01"/],
  ['http://bj-edge-04.tunnel.demo.example:8080', 'upstream-internal', /node "bj-edge-04"/],
  ['http://192.0.2.10', 'upstream-internal', /node "dc-core-01"/],
  // A node's address with IPv4 written inside IPv6: nginx connects to it as that IPv4 address.
  ['http://[::ffff:203.0.113.20]:9100', 'upstream-internal', /node "sh-edge-01"/],
  ['http://[::cb00:7114]:9100', 'upstream-internal', /node "sh-edge-01"/],
  ['http://[64:ff9b::cb00:7114]:9100', 'upstream-internal', /node "sh-edge-01"/],
  ['http://[::ffff:198.51.100.20]', 'upstream-internal', /node "bj-relay-01"/],
  // Ports edgectl and Kong listen on, whatever the host.
  [`http://198.51.100.50:${DEFAULTS.agentListen.split(':')[1]}`, 'upstream-reserved-port', /the agent's port/],
  [`http://198.51.100.50:${Number(DEFAULTS.agentListen.split(':')[1]) + 1}`, 'upstream-reserved-port', /the agent's admin port/],
  ['http://198.51.100.50:8001', 'upstream-reserved-port', /Kong's admin port/],
  ['https://198.51.100.50:8000', 'upstream-reserved-port', /Kong's proxy port/],
  ['https://198.51.100.50:8444', 'upstream-reserved-port', /Kong's TLS admin port/],
  ['http://198.51.100.50:8002', 'upstream-reserved-port', /Kong Manager's port/],
  ['https://198.51.100.50:8445', 'upstream-reserved-port', /Kong Manager's TLS port/],
  ['http://198.51.100.50:8007', 'upstream-reserved-port', /status API/],
  ['http://198.51.100.50:8100', 'upstream-reserved-port', /status API/],
];

describe('upstreams may not be the node itself (edgectl validate)', { timeout: 120_000 }, () => {
  it('every spelling of loopback, unspecified, link-local, the node\'s names and addresses, and edgectl\'s ports is refused', async () => {
    const ok = ['http://198.51.100.50:8080', 'https://203.0.113.99', 'http://[2001:db8::5]:8080', 'http://svc.shop.example:9000', 'http://128.0.0.1:9000', 'http://169.253.1.1:80'];
    const { status, byUrl } = await validateUpstreams([...INTERNAL.map(([u]) => u), ...ok]);
    expect(status).toBe(1);
    for (const [url, rule, message] of INTERNAL) {
      expect(byUrl.get(url), url).toMatchObject([{ rule, path: 'spec.upstream.urls[0]', line: 8, message: expect.stringMatching(message) }]);
    }
    for (const url of ok) expect(byUrl.get(url), url).toEqual([]);
    // The hint names what only the operator can do.
    expect(byUrl.get('http://127.0.0.1:9000')![0].hint).toMatch(/"127\.0\.0\.1:9000" in spec\.policy\.allowUpstreams of the Fleet document/);
  });

  it('the Fleet\'s operator can allow one host:port exactly; an App cannot grant itself anything', async () => {
    const { byUrl } = await validateUpstreams(['http://127.0.0.1:9000', 'http://127.0.0.1:9001', 'http://[::1]:9000', 'http://198.51.100.50:8001', 'http://localhost:9000'], '{ allowUpstreams: ["127.0.0.1:9000", "[::1]:9000", "198.51.100.50:8001"] }');
    expect(byUrl.get('http://127.0.0.1:9000')).toEqual([]);
    expect(byUrl.get('http://[::1]:9000')).toEqual([]);
    expect(byUrl.get('http://198.51.100.50:8001')).toEqual([]);
    expect(byUrl.get('http://127.0.0.1:9001')).toMatchObject([{ rule: 'upstream-internal' }]);
    // The allowance is for the address, not for another name of it.
    expect(byUrl.get('http://localhost:9000')).toMatchObject([{ rule: 'upstream-internal' }]);

    const dir = await exampleCopy();
    await mutate(dir, 'apps/acme.yaml', 'upstream: { urls: ["http://198.51.100.50:8080", "http://198.51.100.51:8080"] }', 'upstream: { urls: ["http://127.0.0.1:9000"] }\n  policy: { allowUpstreams: ["127.0.0.1:9000"] }');
    const j = JSON.parse(cliSync(['validate', '--fleet', dir, '--json']).stdout) as { problems: P[] };
    // An App has no such field: the document is refused whole.
    expect(j.problems.map((p) => `${p.file} ${p.rule} ${p.path}`)).toEqual(['apps/acme.yaml unknown-field spec.policy']);
  });

  it('allowUpstreams entries are HOST:PORT in the canonical spelling', async () => {
    const { status } = await validateUpstreams([], '{ allowUpstreams: ["127.1:9000"] }');
    expect(status).toBe(1);
    const dir = await exampleCopy();
    await mutate(dir, 'fleet.yaml', '  hub:\n', '  policy: { allowUpstreams: ["0x7f000001:80", "127.0.0.1"] }\n  hub:\n');
    const j = JSON.parse(cliSync(['validate', '--fleet', dir, '--json']).stdout) as { problems: P[] };
    expect(j.problems.map((p) => p.path)).toEqual(['spec.policy.allowUpstreams[0]', 'spec.policy.allowUpstreams[1]']);
  });

  it('upstream-mixed: URLs of one app with different schemes or paths are refused here, not by a failing render of the whole fleet', async () => {
    const dir = await exampleCopy();
    await mutate(dir, 'apps/acme.yaml', '"http://198.51.100.51:8080"', '"https://198.51.100.51:8443"');
    await mutate(dir, 'apps/globex.yaml', 'upstream: { urls: ["http://198.51.100.60:9000"] }', 'upstream: { urls: ["http://198.51.100.60:9000/a", "http://198.51.100.62:9000/a/", "http://198.51.100.63:9000/b"] }');
    const r = cliSync(['validate', '--fleet', dir, '--json']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { problems: P[] }).problems.map((p) => `${p.file} ${p.rule} ${p.path}`)).toEqual(['apps/acme.yaml upstream-mixed spec.upstream.urls[1]', 'apps/globex.yaml upstream-mixed spec.upstream.urls[1]']);
  });

  it('the ports refused are the ones render and apply use for Kong', () => {
    expect(KONG_PORTS.proxy).toBe(Number(KONG_PROXY.split(':')[1]));
    expect(KONG_PORTS.admin).toBe(KONG_ADMIN.port);
  });
});
