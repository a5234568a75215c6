import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dataTempDir } from '../helpers/data-dir.js';
import { freePortRange, freePorts } from '../helpers/ports.js';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, writeBundles } from '../../src/lib/render/index.js';
import { type AgentProc, credential, depth, killAll, post, sha, startAgent, waitFor } from './helpers.js';
import { encodeBatch, FORWARD_CONTENT_TYPE } from '../../src/lib/agent/forward/wire.js';
import { stopProcess } from '../helpers/stop.js';

/**
 * A relay as render makes it: real nginx and a real agent, both from the rendered bundle (its
 * agent.json and nginx.conf), on 127.0.4.1. A real edge agent forwards to it through nginx with
 * the credential whose hash the fleet records; strangers come through the same nginx.
 */
const ADDR = '127.0.4.1';
// Free ports, found in beforeAll; each agent's admin API is on the port after its listen port.
let NGINX: number;
let AGENT: number;
let EDGE: number;
let HUB: number;
const run = promisify(execFile);
let dir: string;
let root: string;
let nginx: ChildProcess | undefined;
let relay: AgentProc;
let edge: AgentProc;
const edgeSecret = 'the-credential-edge-n-made';

beforeAll(async () => {
  dir = (await dataTempDir('fwdnginx')).dir; // the fleet names a root in it: below a data prefix
  await chmod(dir, 0o755); // nginx workers run as an unprivileged user
  [NGINX, HUB] = await freePorts(2, ADDR);
  AGENT = await freePortRange(2, ADDR);
  EDGE = await freePortRange(2);
  root = path.join(dir, 'relay');
  const fleet = path.join(dir, 'fleet');
  await mkdir(fleet);
  await writeFile(path.join(fleet, 'fleet.yaml'), ['apiVersion: edgectl/v1', 'kind: Fleet', 'metadata: { name: fwd }', 'spec:', `  hub: { url: "http://${ADDR}:${HUB}/v1/forward" }`,
    '  policy: { allowUpstreams: ["127.0.4.9:9"] }', ''].join('\n')); // the app only gives the tenant a topic; nothing is proxied
  await writeFile(path.join(fleet, 'nodes.yaml'), [
    ['apiVersion: edgectl/v1', 'kind: Node', 'metadata: { name: relay-n }', 'spec:', '  role: relay', `  address: ${ADDR}`, `  root: ${root}`,
      `  http: { address: "${ADDR}", port: ${NGINX} }`, `  agent: { listen: "${ADDR}:${AGENT}" }`, `  credential: { sha256: ${sha('relay-n-secret')} }`].join('\n'),
    ['apiVersion: edgectl/v1', 'kind: Node', 'metadata: { name: edge-n }', 'spec:', '  role: edge', '  address: 127.0.4.2', '  via: [relay-n]', `  credential: { sha256: ${sha(edgeSecret)} }`].join('\n'),
    ['apiVersion: edgectl/v1', 'kind: Node', 'metadata: { name: edge-new }', 'spec:', '  role: edge', '  address: 127.0.4.3', '  via: [relay-n]'].join('\n'),
  ].join('\n---\n') + '\n');
  await writeFile(path.join(fleet, 'tenants.yaml'), ['apiVersion: edgectl/v1', 'kind: Tenant', 'metadata: { name: acme }', 'spec: { uplink: { tokens: [{ name: d, sha256: ' + sha('tok') + ' }] } }', '---',
    'apiVersion: edgectl/v1', 'kind: App', 'metadata: { name: www }', 'spec: { tenant: acme, type: proxy, domains: [www.acme.example], upstream: { urls: ["http://127.0.4.9:9"] }, uplink: { topics: [events] } }', ''].join('\n'));
  const bundles = await renderFleet(await loadFleet(fleet), { edgectlVersion: '0.0.0-test' });
  await writeBundles(bundles.filter((b) => b.node === 'relay-n'), path.join(root, 'releases'));
  for (const d of ['log', 'run', 'cache', 'tmp', 'secrets']) await mkdir(path.join(root, d), { recursive: true });
  await writeFile(path.join(root, 'secrets', 'agent-token'), 'relay-n-secret', { mode: 0o600 });
  await symlink('releases/relay-n', path.join(root, 'current'));
  relay = await startAgent('relay-n', AGENT, AGENT + 1, ['--config', path.join(root, 'current/agent/agent.json')], { host: ADDR });
  nginx = spawn('nginx', ['-p', `${root}/`, '-c', path.join(root, 'current/nginx/nginx.conf'), '-e', path.join(root, 'log/error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`http://${ADDR}:${NGINX}/.edgectl/config`).catch(() => undefined))?.status === 200, 20_000, 'nginx');
  const cred = credential(dir, 'edge-n');
  await writeFile(cred.file, edgeSecret);
  edge = await startAgent('edge-n', EDGE, EDGE + 1, ['--role', 'edge', '--data', path.join(dir, 'edge'), '--upstream', `http://${ADDR}:${NGINX}/v1/forward`,
    '--credential-file', cred.file, '--token', `acme:${sha('tok')}`, '--topic', 'acme/events', '--heartbeat-seconds', '0']);
}, 120_000);

afterAll(async () => {
  await stopProcess(nginx);
  await killAll();
  await rm(dir, { recursive: true, force: true });
});

/** curl through nginx: status and how much of the body it got to send. */
async function curl(headers: string[], bytes: number): Promise<{ status: number; sent: number }> {
  const file = path.join(dir, `body-${bytes}`);
  await writeFile(file, Buffer.alloc(bytes, 120));
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', '-m', '20', '-X', 'POST', '-H', `Content-Type: ${FORWARD_CONTENT_TYPE}`, ...headers.flatMap((h) => ['-H', h]), '--data-binary', `@${file}`, `http://${ADDR}:${NGINX}/v1/forward`];
  const r = await run('curl', args).catch((e: { stdout: string }) => e);
  const [status, sent] = r.stdout.split(' ').map(Number);
  return { status, sent };
}

describe('a rendered relay behind its nginx', { timeout: 120_000 }, () => {
  it('takes the forwards of the edge whose credential the fleet records', async () => {
    for (let i = 0; i < 3; i++) expect((await post(EDGE, 'events', `m${i}`, { authorization: 'Bearer tok' })).status).toBe(202);
    await waitFor(async () => (await depth(edge)) === 0 && (await depth(relay)) === 3, 30_000, 'the edge to forward to the relay');
  });

  it('refuses strangers through nginx with the agent\'s answer, before their 16 MiB are read', async () => {
    const none = await curl([], 16 << 20);
    expect(none.status).toBe(401);
    const wrong = await curl(['Authorization: Bearer guess'], 16 << 20);
    expect(wrong.status).toBe(403);
    for (const r of [none, wrong]) expect(r.sent).toBeLessThan(16 << 20);
    // edge-new is in the fleet but has no credential yet: whatever it presents, relay-n refuses it.
    const batch = encodeBatch([{ id: 'edge-new:e:1', tenant: 'acme', topic: 'events', contentType: 'text/plain', ts: 1, body: Buffer.from('x') }]);
    const r = await fetch(`http://${ADDR}:${NGINX}/v1/forward`, { method: 'POST', body: batch, headers: { 'content-type': FORWARD_CONTENT_TYPE, authorization: 'Bearer anything-at-all' } });
    expect(r.status).toBe(403);
    expect(await depth(relay)).toBe(3);
  });
});
