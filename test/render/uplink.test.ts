import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { loadFleet } from '../../src/lib/fleet/load.js';
import { renderFleet, type Bundle } from '../../src/lib/render/index.js';
import { agentAdminAddress, agentConfigSchema, type AgentConfig } from '../../src/lib/bundle/agent-json.js';
import { MAX_FORWARD_BODY_BYTES } from '../../src/lib/limits.js';
import { TEST_VERSION, tempDir } from './helpers.js';

/**
 * Who accepts whose forwards, as render writes it into agent.json. A chain: e1 via [r1, r2]
 * forwards to r2 (the relay next to it), r2 (via [r1]) to r1, r1 to the hub (core c1 and c2);
 * e2 has no via and forwards to the hub directly; e3 has no credential yet. Agents listening on
 * the network keep their admin API on loopback.
 */
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let addr = 10;
const node = (name: string, role: string, extra: string[] = []) => ['apiVersion: edgectl/v1', 'kind: Node', `metadata: { name: ${name} }`, 'spec:', `  role: ${role}`, `  address: 192.0.2.${addr++}`, ...extra].join('\n');
const cred = (name: string) => `  credential: { sha256: ${sha(`cred-${name}`)} }`;

let tmp: Awaited<ReturnType<typeof tempDir>>;
let bundles: Bundle[];
const agent = (name: string): AgentConfig => agentConfigSchema.parse(JSON.parse(bundles.find((b) => b.node === name)!.files.find((f) => f.path === 'agent/agent.json')!.data.toString()));
const nginxConf = (name: string) => bundles.find((b) => b.node === name)!.files.find((f) => f.path === 'nginx/nginx.conf')!.data.toString();

beforeAll(async () => {
  tmp = await tempDir('uplink');
  await writeFile(path.join(tmp.dir, 'fleet.yaml'), ['apiVersion: edgectl/v1', 'kind: Fleet', 'metadata: { name: uplink }', 'spec:', '  hub: { url: "https://hub.uplink.example/v1/forward" }', ''].join('\n'));
  await writeFile(path.join(tmp.dir, 'nodes.yaml'), [
    node('c1', 'core', [cred('c1')]),
    node('c2', 'core'),
    node('r1', 'relay', [cred('r1'), '  agent: { listen: "0.0.0.0:7311" }']),
    node('r2', 'relay', [cred('r2'), '  via: [r1]', '  agent: { listen: "192.0.2.99:9000" }']),
    node('e1', 'edge', [cred('e1'), '  via: [r1, r2]', '  agent: { listen: "127.0.0.2:7311" }']),
    node('e2', 'edge', [cred('e2')]),
    node('e3', 'edge', ['  via: [r1]']),
  ].join('\n---\n') + '\n');
  bundles = await renderFleet(await loadFleet(tmp.dir), { edgectlVersion: TEST_VERSION });
});
afterAll(() => tmp.cleanup());

describe('render: forwarding credentials and the admin address', () => {
  it('a hop accepts exactly the credentialed nodes whose next hop it is, each with the nodes behind it', () => {
    const list = (n: string) => agent(n).acceptForward.map((a) => [a.node, a.sha256, a.behind]);
    expect(list('r2')).toEqual([['e1', sha('cred-e1'), []]]);
    // e3 forwards to r1 too, but without a credential it is in no list.
    expect(list('r1')).toEqual([['r2', sha('cred-r2'), ['e1']]]);
    for (const hub of ['c1', 'c2']) expect(list(hub)).toEqual([['e2', sha('cred-e2'), []], ['r1', sha('cred-r1'), ['e1', 'e3', 'r2']]]);
    for (const edge of ['e1', 'e2', 'e3']) expect(agent(edge).acceptForward).toEqual([]);
    expect(agent('e1').upstreams).toEqual([expect.stringMatching(/\/\/192\.0\.2\.\d+:80\/v1\/forward$/)]);
    expect(agent('e1').credentialFile).toBe('/var/lib/edgectl/secrets/agent-token');
  });

  it('puts the admin API on loopback (listen port + 1) even when the agent listens on the network, with its token file in the data dir', () => {
    expect([agent('r1').listen, agent('r1').admin]).toEqual(['0.0.0.0:7311', '127.0.0.1:7312']);
    expect([agent('r2').listen, agent('r2').admin]).toEqual(['192.0.2.99:9000', '127.0.0.1:9001']);
    expect(agent('e1').admin).toBe('127.0.0.2:7312');
    // IPv6 listen addresses do not render yet (issue 10, class 10); the address rule already knows them.
    expect(agentAdminAddress('[::1]:7311')).toEqual({ host: '[::1]', port: 7312 });
    expect(agentAdminAddress('[::]:7311')).toEqual({ host: '127.0.0.1', port: 7312 });
    expect(agent('e1').adminTokenFile).toBe('/var/lib/edgectl/spool/admin-token');
  });

  it('exposes /v1/forward in nginx only where someone forwards to (relays, the hub), streamed with the agents\' body limit', () => {
    for (const n of ['e1', 'e2', 'e3']) expect(nginxConf(n)).not.toContain('/v1/forward');
    for (const n of ['r1', 'c1']) {
      const loc = /location \^~ \/v1\/forward \{([^}]*)\}/.exec(nginxConf(n))?.[1] ?? '';
      expect(loc).toContain('proxy_request_buffering off;');
      expect(loc).toContain(`client_max_body_size ${MAX_FORWARD_BODY_BYTES};`);
    }
  });
});
