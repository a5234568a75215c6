import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstConfig } from '../../src/lib/bootstrap/pack.js';
import { packInstallScript } from '../../src/lib/bootstrap/pack-install.js';
import { generateTunnelKey, KEYGEN_JS } from '../../src/lib/bootstrap/tunnel-key.js';
import { recordTunnelKeys, setTunnelKeyInText } from '../../src/lib/bootstrap/tunnel-key-record.js';
import type { AgentConfig } from '../../src/lib/bundle/agent-json.js';

/** The pieces of issue 16's key lifecycle that need no node: the key format, the fleet edit, the first config. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-pack-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const block = `# edges
apiVersion: edgectl/v1
kind: Node
metadata:
  name: e1
spec:
  role: edge   # kept
  tunnel: reverse
---
apiVersion: edgectl/v1
kind: Node
metadata: { name: e2 }
spec: { role: edge, tunnel: reverse, tunnelKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOXbd0dOCxYqq+Ebyw8P8Fr6QpfnYgyrfc9ihIC9C2Ej old" }
`;

describe('the tunnel key', () => {
  it('is an OpenSSH ed25519 key that ssh-keygen reads, and its public half is read back from the private file', async () => {
    const k = generateTunnelKey('e1');
    const file = join(dir, 'key');
    await writeFile(file, k.privateKey, { mode: 0o600 });
    expect(execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim()).toBe(`${k.publicKey} e1`);
    expect(execFileSync(process.execPath, ['-e', KEYGEN_JS, 'pub', file], { encoding: 'utf8' }).trim()).toBe(k.publicKey);
    const ssh2 = await import('ssh2');
    const parsed = ssh2.utils.parseKey(k.privateKey);
    expect(parsed instanceof Error ? parsed.message : parsed.type).toBe('ssh-ed25519');
    expect(generateTunnelKey('e1').publicKey).not.toBe(k.publicKey);
    // `new` never writes over a key.
    expect(() => execFileSync(process.execPath, ['-e', KEYGEN_JS, 'new', file, 'x'], { stdio: 'pipe' })).toThrow();
  });

  it('goes into the node document: one line inserted, or the value replaced; nothing else changes', () => {
    const k = generateTunnelKey('e1').publicKey;
    const r1 = setTunnelKeyInText(block, 'e1', k);
    if ('error' in r1) throw new Error(r1.error);
    expect(r1.text).toBe(block.replace('  role: edge   # kept\n', `  tunnelKey: "${k} e1"\n  role: edge   # kept\n`));
    const r2 = setTunnelKeyInText(block, 'e2', k);
    if ('error' in r2) throw new Error(r2.error);
    expect(r2.text).toBe(block.replace(/"ssh-ed25519 \S+ old"/, `"${k} e2"`));
    expect(parseAllDocuments(r2.text).map((d) => d.toJS())[1].spec.tunnelKey).toBe(`${k} e2`);
    expect(setTunnelKeyInText(block, 'e3', k)).toEqual({ error: 'no Node document named e3' });
    expect(setTunnelKeyInText(block, 'e1', 'ssh-ed25519 AAAA')).toMatchObject({ error: expect.stringMatching(/not a public key/) });
  });

  it('is never written through a link in the fleet', async () => {
    const fleet = join(dir, 'fleet');
    await rm(fleet, { recursive: true, force: true });
    await import('node:fs/promises').then((f) => f.mkdir(fleet));
    await writeFile(join(dir, 'outside.yaml'), block);
    await symlink(join(dir, 'outside.yaml'), join(fleet, 'nodes.yaml'));
    expect(() => recordTunnelKeys(fleet, [{ node: 'e1', file: 'nodes.yaml', key: generateTunnelKey('e1').publicKey }])).toThrow(/cannot record tunnel keys in nodes.yaml/);
    expect(await readFile(join(dir, 'outside.yaml'), 'utf8')).toBe(block);
  });
});

describe('the pack', () => {
  const rendered = { format: 'edgectl-agent/v1', node: 'e1', role: 'edge', listen: '127.0.0.1:7311', admin: '127.0.0.1:7312', dataDir: '/srv/edgectl/spool', maxMessageBytes: 65536, upstreams: [], acceptForward: [], tenants: [], fastcgi: [{ app: 'acme.php', socket: '/srv/edgectl/run/fastcgi/acme.php.sock', root: '/srv/edgectl/current/sites/php' }], tunnel: { relay: 'r1', host: '198.51.100.7', port: 22, user: 'edgectl-tunnel', hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOXbd0dOCxYqq+Ebyw8P8Fr6QpfnYgyrfc9ihIC9C2Ej'], remotePort: 2204, keyFile: '/srv/edgectl/secrets/tunnel-key', target: '127.0.0.1:22' } } as unknown as AgentConfig;

  it('runs the rendered agent.json without the FastCGI apps until a release, and refuses an unpinned relay', () => {
    const first = firstConfig('e1', rendered) as AgentConfig & { fastcgi?: unknown };
    expect(first.fastcgi).toBeUndefined();
    expect(first.tunnel).toEqual(rendered.tunnel);
    expect(() => firstConfig('e1', { ...rendered, tunnel: { ...rendered.tunnel!, hostKeys: [] } })).toThrow(/pins no host key for relay r1/);
  });

  it('puts only checked values into install.sh', () => {
    const ok = { node: 'e1', root: '/srv/edgectl', version: 'a'.repeat(20), arch: 'x86_64' };
    expect(packInstallScript(ok)).toContain('r=/srv/edgectl\n');
    for (const bad of [{ root: '/srv/$(reboot)' }, { node: 'e1;x' }, { version: 'zz' }, { arch: 'sparc' }]) expect(() => packInstallScript({ ...ok, ...bad })).toThrow(/cannot go into install.sh/);
  });
});
