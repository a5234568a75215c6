import { afterAll, describe, expect, it } from 'vitest';
import { cleanTemps, exampleCopy, lineOf, mutate, validateDir } from './helpers.js';

/**
 * One failing case per rule: fleet.example with one mutation. Each asserts the rule id, the
 * file, the line (where the mutation sits, found by a marker in the mutated text), the field
 * path and the message.
 */
interface Case {
  rule: string;
  file: string;
  find: string | RegExp;
  replace: string;
  /** Text on the line the problem must point at (default: the replacement's first line). */
  marker?: string;
  path?: string;
  message: RegExp;
  hint?: RegExp;
  severity?: 'error' | 'warning';
}

const CASES: Record<string, Case> = {
  'yaml syntax error': { rule: 'yaml-syntax', file: 'nodes/core.yaml', find: 'role: core', replace: 'role: core: x', message: /YAML syntax error/ },
  'duplicate key': { rule: 'duplicate-key', file: 'nodes/core.yaml', find: '  role: core\n', replace: '  role: core\n  role: relay\n', marker: 'role: relay', message: /duplicate key/ },
  'wrong apiVersion': { rule: 'wrong-api-version', file: 'nodes/core.yaml', find: 'apiVersion: edgectl/v1', replace: 'apiVersion: edgectl/v2', path: 'apiVersion', message: /apiVersion "edgectl\/v2" is not supported/, hint: /edgectl\/v1/ },
  'unknown kind': { rule: 'unknown-kind', file: 'nodes/core.yaml', find: 'kind: Node', replace: 'kind: Nodes', path: 'kind', message: /unknown kind "Nodes"/, hint: /did you mean `Node`/ },
  'unknown field (typo)': { rule: 'unknown-field', file: 'apps/acme.yaml', find: 'replicas: 2', replace: 'replica: 2', path: 'spec.placement.replica', message: /unknown field "replica"/, hint: /did you mean `replicas`/ },
  'unknown top-level field': { rule: 'unknown-field', file: 'nodes/core.yaml', find: 'spec:\n', replace: 'specs: {}\nspec:\n', marker: 'specs:', path: 'specs', message: /unknown field "specs"/, hint: /did you mean `spec`/ },
  'wrong type': { rule: 'wrong-type', file: 'nodes/south.yaml', find: '  kong: true\n', replace: '  kong: "yes"\n', marker: 'kong', path: 'spec.kong', message: /must be a boolean, not string/ },
  'missing field': { rule: 'missing-field', file: 'nodes/core.yaml', find: '  address: 192.0.2.10\n', replace: '', marker: 'role: core', path: 'spec.address', message: /required field is missing/ },
  'name not a DNS label': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'name: dc-core-01', replace: 'name: DC_core_01', path: 'metadata.name', message: /must be a DNS label/ },
  'name too long': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'name: dc-core-01', replace: `name: ${'a'.repeat(64)}`, path: 'metadata.name', message: /must be a DNS label/ },
  'duplicate name': { rule: 'duplicate-name', file: 'nodes/north.yaml', find: 'name: bj-edge-02', replace: 'name: "bj-edge-01"', path: 'metadata.name', message: /Node "bj-edge-01" is already defined at nodes\/north.yaml:\d+/ },
  'unknown tenant': { rule: 'unknown-tenant', file: 'apps/acme.yaml', find: 'tenant: acme\n  type: proxy', replace: 'tenant: acne\n  type: proxy', path: 'spec.tenant', message: /unknown tenant "acne"/, hint: /did you mean `acme`/ },
  'via unknown node': { rule: 'via-unknown-node', file: 'nodes/south.yaml', find: /via: \[sh-relay-01\](?=\n {2}capacity: \{ cpu: 4)/, replace: 'via: [sh-relay-09]', path: 'spec.via[0]', message: /unknown node "sh-relay-09"/, hint: /did you mean `sh-relay-01`/ },
  'via a core node': { rule: 'via-not-relay', file: 'nodes/south.yaml', find: /via: \[sh-relay-01\](?=\n {2}capacity: \{ cpu: 4)/, replace: 'via: [dc-core-01]', path: 'spec.via[0]', message: /node "dc-core-01" is a core, not a relay/ },
  'via an edge node': { rule: 'via-not-relay', file: 'nodes/south.yaml', find: /via: \[sh-relay-01\](?=\n {2}capacity: \{ cpu: 4)/, replace: 'via: [sh-relay-01, bj-edge-01]', path: 'spec.via[1]', message: /node "bj-edge-01" is an edge, not a relay/ },
  'via itself': { rule: 'via-cycle', file: 'nodes/relays.yaml', find: '  address: 198.51.100.20\n', replace: '  address: 198.51.100.20\n  via: [bj-relay-01]\n', marker: 'via:', path: 'spec.via[0]', message: /node lists itself in via/ },
  'via cycle across relays': { rule: 'via-cycle', file: 'nodes/relays.yaml', find: / {2}address: 198.51.100.20\n([\s\S]*) {2}address: 198.51.100.30\n/, replace: '  address: 198.51.100.20\n  via: [sh-relay-01]\n$1  address: 198.51.100.30\n  via: [bj-relay-01]\n', marker: 'via: [bj-relay-01]', path: 'spec.via[0]', message: /relays form a cycle: (bj-relay-01 → sh-relay-01 → bj-relay-01|sh-relay-01 → bj-relay-01 → sh-relay-01)/ },
  'reverse tunnel without relay': { rule: 'reverse-without-relay', file: 'nodes/north.yaml', find: '  via: [bj-relay-01]\n  tunnel: reverse\n', replace: '  tunnel: reverse\n', marker: 'tunnel: reverse', path: 'spec.tunnel', message: /a reverse tunnel needs a relay/ },
  'reverse tunnel ports collide': { rule: 'tunnel-port-conflict', file: 'nodes/north.yaml', find: '  via: [bj-relay-01]\n  capacity: { cpu: 2, memoryMb: 2048 }\n---\n# A node behind', replace: '  via: [bj-relay-01]\n  tunnel: reverse\n  tunnelPort: 2204\n  capacity: { cpu: 2, memoryMb: 2048 }\n---\n# A node behind', marker: 'tunnelPort: 2204           #', path: 'spec.tunnelPort', message: /already lands its reverse tunnel on port 2204 of relay "bj-relay-01"/ },
  'domain with a wildcard inside': { rule: 'invalid-value', file: 'apps/globex.yaml', find: '"*.shelves.globex.example"', replace: '"shelves.*.globex.example"', path: 'spec.domains[0]', message: /wildcard only as the whole leftmost label/ },
  'domain with a partial wildcard': { rule: 'invalid-value', file: 'apps/globex.yaml', find: '"*.shelves.globex.example"', replace: '"a*.shelves.globex.example"', path: 'spec.domains[0]', message: /must be a valid hostname/ },
  'domain in capitals': { rule: 'invalid-value', file: 'apps/acme.yaml', find: 'domains: [track.acme.example]', replace: 'domains: [Track.acme.example]', path: 'spec.domains[0]', message: /must be a valid hostname \(lowercase/ },
  'domain claimed by two tenants': { rule: 'domain-conflict', file: 'apps/globex.yaml', find: 'domains: [api.globex.example]', replace: 'domains: [track.acme.example]', path: 'spec.domains[0]', message: /domain "track.acme.example" is also claimed by tenant "acme" \(app "acme-track", apps\/acme.yaml:\d+\)/ },
  'upstream URL not http': { rule: 'invalid-value', file: 'apps/acme.yaml', find: '"http://198.51.100.50:8080"', replace: '"ftp://198.51.100.50:8080"', path: 'spec.upstream.urls[0]', message: /URL must start with http:\/\/ or https:\/\// },
  'upstream URL with a semicolon': { rule: 'invalid-value', file: 'apps/acme.yaml', find: '"http://198.51.100.50:8080"', replace: '"http://198.51.100.50:8080/;return"', path: 'spec.upstream.urls[0]', message: /not allowed/ },
  'upstream URL without host': { rule: 'invalid-value', file: 'apps/acme.yaml', find: '"http://198.51.100.50:8080"', replace: '"http:///x"', path: 'spec.upstream.urls[0]', message: /URL has no host/ },
  'hub URL with credentials': { rule: 'invalid-value', file: 'fleet.yaml', find: 'url: https://hub.demo.example', replace: 'url: https://user:pw@hub.demo.example', path: 'spec.hub.url', message: /must not carry credentials/ },
  'address neither IP nor hostname': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'address: 192.0.2.10', replace: 'address: 192.0.2.300', path: 'spec.address', message: /must be an IP address or a hostname/ },
  'address with a shell metacharacter': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'address: 192.0.2.10', replace: 'address: "192.0.2.10;reboot"', path: 'spec.address', message: /must be an IP address or a hostname/ },
  'two nodes on one endpoint': { rule: 'node-duplicate-endpoint', file: 'nodes/north.yaml', find: 'address: 203.0.113.11', replace: 'address: "203.0.113.10"', path: 'spec.address', message: /node "bj-edge-01" has the same address, ssh port and root/ },
  'port out of range': { rule: 'out-of-range', file: 'nodes/south.yaml', find: 'port: 2222', replace: 'port: 70000', path: 'spec.ssh.port', message: /port between 1 and 65535/ },
  'port zero': { rule: 'out-of-range', file: 'fleet.yaml', find: 'http: { port: 80 }', replace: 'http: { port: 0 }', path: 'spec.defaults.http.port', message: /port between 1 and 65535/ },
  'label value that breaks config': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'site: dc1', replace: 'site: "dc1;}"', path: 'metadata.labels.site', message: /must be a label value/ },
  'label value with a newline': { rule: 'invalid-value', file: 'nodes/core.yaml', find: 'site: dc1', replace: 'site: "dc1\\ninclude /etc/passwd"', path: 'metadata.labels.site', message: /must be a label value/ },
  'selector matches fewer nodes than replicas': { rule: 'placement-too-few-nodes', file: 'apps/acme.yaml', find: 'replicas: 2, spreadBy: site', replace: 'replicas: 5, spreadBy: site', path: 'spec.placement.replicas', message: /placement asks for 5 replicas but only 4 edge node\(s\) match the selector/ },
  'api app needs Kong nodes': { rule: 'placement-too-few-nodes', file: 'apps/globex.yaml', find: 'placement: { replicas: 2, spreadBy: region }', replace: 'placement: { replicas: 4, spreadBy: region }', path: 'spec.placement.replicas', message: /only 3 Kong edge node\(s\)/ },
  'token not sha256 hex': { rule: 'invalid-value', file: 'tenants/tenants.yaml', find: 'sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', replace: 'sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0', path: 'spec.uplink.tokens[0].sha256', message: /64 lowercase hex digits/ },
  'token in capitals': { rule: 'invalid-value', file: 'tenants/tenants.yaml', find: 'sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', replace: 'sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08', path: 'spec.uplink.tokens[0].sha256', message: /64 lowercase hex digits/ },
  'token used by two tenants': { rule: 'token-reused', file: 'tenants/tenants.yaml', find: 'sha256: 417a0520b25fca2dfca8e6e304584cf104a1a4ac01ea840fab22e7d752e6b201', replace: 'sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', marker: 'shelf-sensors', path: 'spec.uplink.tokens[0].sha256', message: /already used by tenant "acme"/ },
  'node credential that is not a sha256': { rule: 'invalid-value', file: 'nodes/relays.yaml', find: 'credential: { sha256: 09dcb8d1e0cf3bf49603aa03e407145bc49ad5afd14ec656c4987855eea8cefd }', replace: 'credential: { sha256: relay-secret }', path: 'spec.credential.sha256', message: /sha256 of the node's credential/ },
  'node credential given as the secret': { rule: 'unknown-field', file: 'nodes/relays.yaml', find: 'credential: { sha256: 09dcb8d1e0cf3bf49603aa03e407145bc49ad5afd14ec656c4987855eea8cefd }', replace: 'credential: { secret: hunter2 }', path: 'spec.credential.secret', message: /unknown field "secret"/ },
  'credential hash on two nodes': { rule: 'credential-reused', file: 'nodes/north.yaml', find: 'credential: { sha256: fd5c5b130700338cd50d5d54c13385f94e90bcd82bd553f1efbc06a9492d1fd8 }', replace: 'credential: { sha256: 8b9efe42ddff18bc29d63c2a9c62b3fd7aa67178dd1aa444697f116ac45b2874 }  # copied', path: 'spec.credential.sha256', message: /already node "bj-edge-01"'s/ },
  'credential hash that is a device token': { rule: 'credential-reused', file: 'nodes/north.yaml', find: 'credential: { sha256: fd5c5b130700338cd50d5d54c13385f94e90bcd82bd553f1efbc06a9492d1fd8 }', replace: 'credential: { sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 }', path: 'spec.credential.sha256', message: /a device token of tenant "acme"/ },
  'display name with nginx syntax': { rule: 'invalid-value', file: 'tenants/tenants.yaml', find: 'displayName: ACME Logistics', replace: 'displayName: "ACME; } server {"', path: 'spec.displayName', message: /printable text/ },
  'release root outside a safe place': { rule: 'invalid-value', file: 'fleet.yaml', find: 'root: /var/lib/edgectl', replace: 'root: /etc', path: 'spec.defaults.root', message: /must be a directory below \/var\/lib\// },
  'path escaping the repo': { rule: 'invalid-value', file: 'apps/acme.yaml', find: 'path: sites/acme-www', replace: 'path: ../../etc', path: 'spec.static.path', message: /relative path inside the fleet repo/ },
  'enum typo': { rule: 'invalid-value', file: 'apps/acme.yaml', find: 'type: static', replace: 'type: statik', path: 'spec.type', message: /must be one of "static", "proxy", "fastcgi", "api", not "statik"/, hint: /did you mean `static`/ },
  'field that does not fit the app type': { rule: 'field-not-for-type', file: 'apps/initech.yaml', find: '  placement: { selector', replace: '  cache: { ttl: 10s }\n  placement: { selector', marker: 'cache:', path: 'spec.cache', message: /spec.cache applies to proxy apps only, not fastcgi/ },
  'YAML merge key': { rule: 'unknown-field', file: 'nodes/core.yaml', find: 'spec:\n', replace: 'spec:\n  <<: { kong: true }\n', marker: '<<', path: 'spec["<<"]', message: /unknown field "<<"/, hint: /merge keys/ },
  'YAML tag': { rule: 'yaml-tag', file: 'nodes/core.yaml', find: 'role: core', replace: 'role: !!binary Y29yZQ==', message: /YAML tag !!binary is not supported/ },
  'custom YAML tag': { rule: 'yaml-tag', file: 'nodes/core.yaml', find: 'role: core', replace: 'role: !shell core', message: /YAML tag !shell is not supported/ },
  'document that is a scalar': { rule: 'not-a-mapping', file: 'nodes/core.yaml', find: /^apiVersion[\s\S]*$/m, replace: 'just a string\n', marker: 'just a string', message: /must be a mapping/ },
  'app placed on no node (warning)': { rule: 'placement-empty', severity: 'warning', file: 'apps/initech.yaml', find: 'placement: { selector: { region: south }, replicas: 1 }', replace: 'placement: { selector: { region: south, isp: satellite } }', path: 'spec.placement', message: /app is placed on no node/ },
};

afterAll(cleanTemps);

describe('each rule, on fleet.example with one mutation', { timeout: 120_000 }, () => {
  it('fleet.example itself is valid, without warnings', async () => {
    const r = await validateDir(await exampleCopy());
    expect(r.problems).toEqual([]);
    expect(r.model?.nodes.length).toBe(10);
  });

  it('credential-missing: a node with no recorded hash is a warning naming the hop that refuses it; a fleet with no hub and no relay has nothing to warn of', async () => {
    const dir = await exampleCopy();
    await mutate(dir, 'nodes/south.yaml', '  credential: { sha256: 83522f3ad8de3b654d15f96ca3afa9c151a034a5c5231f21708e102193862c33 }\n', '');
    const viaRelay = (await validateDir(dir)).problems;
    expect(viaRelay).toMatchObject([{ severity: 'warning', rule: 'credential-missing', file: 'nodes/south.yaml', line: 33, path: 'spec' }]);
    expect(viaRelay[0].message).toContain('relay sh-relay-01 refuses this node\'s forwards');
    await mutate(dir, 'nodes/north.yaml', '  credential: { sha256: 8b9efe42ddff18bc29d63c2a9c62b3fd7aa67178dd1aa444697f116ac45b2874 }\n  via: [bj-relay-01]\n', '');
    const direct = (await validateDir(dir)).problems.filter((p) => p.file === 'nodes/north.yaml');
    expect(direct).toMatchObject([{ rule: 'credential-missing', severity: 'warning' }]);
    expect(direct[0].message).toContain('the hub refuses');
    // No hub: the direct edge has nowhere to forward to; the one behind its relay still warns.
    await mutate(dir, 'nodes/core.yaml', '  role: core\n', '  role: relay\n');
    const noHub = (await validateDir(dir)).problems.filter((p) => p.rule === 'credential-missing');
    expect(noHub.map((p) => p.file)).toEqual(['nodes/south.yaml']);
  });

  it('node-duplicate-endpoint: the fleet defaults count (an explicit default root still collides), another root does not', async () => {
    const endpointProblems = async (root: string) => {
      const dir = await exampleCopy();
      await mutate(dir, 'nodes/north.yaml', '  address: 203.0.113.11\n', `  address: 203.0.113.10\n  root: ${root}\n`);
      return (await validateDir(dir)).problems.filter((p) => p.rule === 'node-duplicate-endpoint');
    };
    expect(await endpointProblems('/var/lib/edgectl')).toMatchObject([{ file: 'nodes/north.yaml', path: 'spec.address' }]);
    expect(await endpointProblems('/srv/edgectl-b')).toEqual([]);
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(`${c.rule}: ${name}`, async () => {
      const dir = await exampleCopy();
      const text = await mutate(dir, c.file, c.find, c.replace);
      const r = await validateDir(dir);
      const hits = r.problems.filter((p) => p.rule === c.rule && p.file === c.file);
      expect(hits, `problems: ${JSON.stringify(r.problems, null, 1)}`).not.toHaveLength(0);
      const p = hits[0];
      expect(p.severity).toBe(c.severity ?? 'error');
      expect(p.message).toMatch(c.message);
      expect(p.line).toBe(lineOf(text, c.marker ?? c.replace.split('\n')[0]));
      expect(p.column).toBeGreaterThan(0);
      if (c.path !== undefined) expect(p.path).toBe(c.path);
      if (c.hint) expect(p.hint).toMatch(c.hint);
      if ((c.severity ?? 'error') === 'error') expect(r.errors).toBeGreaterThan(0);
      else expect(r.errors).toBe(0);
    });
  }
});
