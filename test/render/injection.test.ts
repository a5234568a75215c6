import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadFleet } from '../../src/lib/fleet/load.js';
import type { LoadedFleet } from '../../src/lib/fleet/load.js';
import { renderFleet } from '../../src/lib/render/index.js';
import { EdgectlError } from '../../src/lib/errors.js';
import { q, domain, listen, hostPort, upstreamTarget } from '../../src/lib/render/nginx-quote.js';
import { guardProblems } from '../../src/lib/nginx/guard.js';
import { TEST_VERSION, copyExample, tempDir } from './helpers.js';

/**
 * Values that validation rejects, fed straight to the renderer (as if validation had a hole):
 * rendering must fail with EDGECTL_RENDER, never emit a config whose structure they changed.
 */
const HOSTILE = [
  'evil.example;\n    load_module /tmp/x.so',
  'evil.example }',
  'evil.example { return 200',
  'evil.example#',
  'evil.example$host',
  '"evil.example"',
  "evil.example'",
  'evil.example\nserver_name other.example',
  'evil.example\\',
  'evil example',
  'evil.example\u0000',
];

async function expectRenderError(loaded: LoadedFleet, mutate: (l: LoadedFleet) => void, what: RegExp | string = /refusing|unsafe|invalid|not /) {
  mutate(loaded);
  const err = await renderFleet(loaded, { edgectlVersion: TEST_VERSION }).then(() => undefined, (e: unknown) => e);
  expect(err, 'render should have refused').toBeInstanceOf(EdgectlError);
  expect((err as EdgectlError).code).toBe('EDGECTL_RENDER');
  expect((err as EdgectlError).message).toMatch(what);
}

describe('hostile values reaching the renderer', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let fleetDir: string;
  const fresh = () => loadFleet(fleetDir);
  const app = (l: LoadedFleet, name: string) => l.model.apps.find((a) => a.name === name)!;
  const node = (l: LoadedFleet, name: string) => l.model.nodes.find((n) => n.name === name)!;

  beforeAll(async () => {
    tmp = await tempDir('inject');
    fleetDir = await copyExample(tmp.dir);
  });
  afterAll(() => tmp.cleanup());

  it.each(HOSTILE)('domain %j', async (v) => {
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-www').spec.domains = ['www.acme.example', v]), 'refusing to render domain');
  });

  it.each(HOSTILE)('upstream URL with %j', async (v) => {
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-track').spec.upstream!.urls = [`http://198.51.100.50:8080/${v}`]), 'upstream URL');
    await expectRenderError(await fresh(), (l) => (app(l, 'globex-pos-api').spec.upstream!.urls = [`http://${v}:9000`]), 'upstream URL');
  });

  it.each(HOSTILE)('tenant, app and file names %j', async (v) => {
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-www').spec.tenant = v));
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-www').name = v));
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-www').spec.static!.index = v), 'refusing to render value');
  });

  it.each(['10m;proxy_pass http://x', '1d }', '5s\n', '$ttl'])('cache and timeout durations %j', async (v) => {
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-track').spec.cache!.ttl = v), 'duration');
    await expectRenderError(await fresh(), (l) => (app(l, 'acme-track').spec.upstream!.readTimeout = v), 'duration');
  });

  it('numbers that are not numbers', async () => {
    await expectRenderError(await fresh(), (l) => ((app(l, 'acme-track').spec.upstream as any).keepalive = '16; load_module x'), 'number');
    await expectRenderError(await fresh(), (l) => ((app(l, 'acme-track').spec.cache as any).maxBodyKb = Infinity), 'number');
    await expectRenderError(await fresh(), (l) => ((l.model.fleet.spec.defaults as any).http = { port: '80;' }), 'number');
  });

  it.each(HOSTILE)('node listen address, agent listen and root %j', async (v) => {
    await expectRenderError(await fresh(), (l) => (node(l, 'bj-edge-01').spec.http = { address: v, port: 80 }), 'address');
    await expectRenderError(await fresh(), (l) => (node(l, 'bj-edge-01').spec.agent = { listen: `${v}:7311` }));
    await expectRenderError(await fresh(), (l) => (node(l, 'sh-edge-02').spec.root = `/srv/${v}`));
  });

  it('consumer key names that are not environment variable names', async () => {
    await expectRenderError(await fresh(), (l) => (l.model.tenants.find((t) => t.name === 'globex')!.spec.consumers![0].keyEnv = 'X}\nkey: plaintext'), 'environment variable');
  });

  it('Kong values are YAML-quoted: a hostile route path stays one string', async () => {
    const l = await fresh();
    const path0 = '/v1/x"\n  evil: true\n- name: injected';
    app(l, 'globex-pos-api').spec.routes![0].paths = [path0];
    const b = await renderFleet(l, { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-01'] });
    const kong = parseYaml(b[0].files.find((f) => f.path === 'kong/kong.yml')!.data.toString());
    expect(kong.services).toHaveLength(1);
    expect(kong.services[0].routes).toHaveLength(1);
    expect(kong.services[0].routes[0].paths).toEqual([path0]);
    expect(Object.keys(kong.services[0].routes[0]).sort()).toEqual(['hosts', 'id', 'methods', 'name', 'paths', 'preserve_host', 'strip_path', 'tags']);
  });

  it('names that look like directives are just arguments', async () => {
    const l = await fresh();
    app(l, 'acme-www').spec.tenant = 'lua';
    l.model.tenants.find((t) => t.name === 'acme')!.name = 'lua';
    const b = await renderFleet(l, { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-03'] });
    expect(b[0].files.find((f) => f.path === 'nginx/conf.d/lua.acme-www.conf')!.data.toString()).toContain('set $edgectl_tenant lua;');
  });

  it('an edgectl template that renders load_module, ssl_engine or Lua is refused before any bundle exists', async () => {
    // As if a built-in template had a bug: the guard runs on every nginx file render produces.
    const l = await fresh();
    app(l, 'acme-www').spec.domains = ['www.acme.example'];
    const { NginxRenderer } = await import('../../src/lib/render/nginx.js');
    const orig = NginxRenderer.prototype.render;
    NginxRenderer.prototype.render = function (this: InstanceType<typeof NginxRenderer>, ...args: Parameters<typeof orig>) {
      const r = orig.apply(this, args);
      return { ...r, fragments: r.fragments.map((f) => ({ ...f, data: Buffer.from(f.data.toString().replace('server {', 'server {\n    add_header X "#"; "content_by_lua_block" { return; }')) })) };
    };
    try {
      await expect(renderFleet(l, { edgectlVersion: TEST_VERSION, nodes: ['bj-edge-03'] })).rejects.toThrow(/conf\.d\/acme\.acme-www\.conf:3:23: the directive "content_by_lua_block" is never allowed/);
    } finally {
      NginxRenderer.prototype.render = orig;
    }
  });

  it('the helpers themselves reject every character that means something to nginx', () => {
    for (const ch of ['\n', '\r', ';', '{', '}', '#', '$', '"', "'", '\\', ' ', '\t', '`']) {
      expect(() => q(`a${ch}b`)).toThrow(EdgectlError);
      expect(() => domain(`a${ch}b.example`)).toThrow(EdgectlError);
      expect(() => listen({ address: `127.0.0.1${ch}`, port: 80 })).toThrow(EdgectlError);
      expect(() => upstreamTarget(`http://10.0.0.1/${ch}`)).toThrow(EdgectlError);
    }
    expect(q('GET')).toBe('GET');
    expect(listen({ address: '::1', port: 8080 })).toBe('[::1]:8080');
    expect(listen({ port: 80 })).toBe('80');
    expect(upstreamTarget('https://[2001:db8::1]/api')).toEqual({ scheme: 'https', server: '[2001:db8::1]:443', host: '2001:db8::1', path: '/api' });
    expect(guardProblems('http {\n  ssl_engine pkcs11;\n}')).toMatchObject([{ line: 2, column: 3, message: expect.stringContaining('ssl_engine') }]);
    expect(guardProblems('server { set $x env; }')).toEqual([]);
  });

  it('a host named unix never becomes a UNIX socket; IPv6 goes in brackets', () => {
    expect(() => listen({ address: 'unix', port: 80 })).toThrow(/UNIX socket/);
    expect(() => hostPort('unix:7311')).toThrow(/UNIX socket/);
    expect(() => upstreamTarget('http://unix:8080/')).toThrow(EdgectlError);
    expect(() => upstreamTarget('http://unix/')).toThrow(EdgectlError);
    expect(hostPort('unix.example:7311')).toBe('unix.example:7311');
    expect(hostPort('[::1]:7311')).toBe('[::1]:7311');
    expect(hostPort('[::ffff:192.0.2.1]:7311')).toBe('[::ffff:192.0.2.1]:7311');
    expect(() => hostPort('::1:7311')).toThrow(EdgectlError);
    expect(() => hostPort('[a.example]:7311')).toThrow(EdgectlError);
    expect(() => listen({ address: 'fe80::1%eth0', port: 80 })).toThrow(EdgectlError);
    expect(listen({ address: '2001:db8::1', port: 8080 })).toBe('[2001:db8::1]:8080');
    expect(upstreamTarget('http://[2001:db8::1]:8080/').server).toBe('[2001:db8::1]:8080');
  });
});
