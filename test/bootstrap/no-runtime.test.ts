import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestFleet } from '../apply/helpers.js';
import { cli, json } from '../helpers/cli.js';
import { bootNode, type NspawnNode } from '../helpers/nspawn.js';

/** A real systemd node without Node.js: bootstrap says what the node needs, and installs nothing. */
const ROOT = '/srv/edgectl';
let dir: string;
let fleet: string;
let key: string;
let home: string;
let node: NspawnNode;
const edgectl = (args: string[]) => cli([...args, '--fleet', fleet, '-i', key], { home, timeout: 180_000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-bootstrap-nort-'));
  home = join(dir, 'home');
  key = join(dir, 'id_ed25519');
  await execa('mkdir', ['-p', home]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-test', '-f', key]);
  node = await bootNode({ name: 'ec-boot-nort', authorizedKey: await readFile(`${key}.pub`, 'utf8'), noNode: true, log: (s) => process.stderr.write(`${s}\n`) });
  fleet = join(dir, 'fleet');
  const nodeDoc = `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: n2 }\nspec: { role: edge, address: ${node.address}, ssh: { user: root, port: 22 }, root: ${ROOT} }\n`;
  await writeTestFleet(fleet, { nodes: ['n2'], nodeDocs: nodeDoc, apps: [] });
}, 1_500_000);

afterAll(async () => {
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl bootstrap on a node without a usable Node.js', { timeout: 180_000 }, () => {
  it('refuses a --runtime that is too old, leaving nothing half-installed', async () => {
    { const r = await edgectl(['trust', 'n2']); expect(r.code, r.stderr).toBe(0); }
    // A runtime that is there but too old (here: a script answering v18).
    await node.exec(['sh', '-c', 'printf "#!/bin/sh\\necho v18.19.0\\n" > /usr/local/bin/old-node && chmod 755 /usr/local/bin/old-node']);
    const r = await edgectl(['bootstrap', 'n2', '--yes', '--runtime', '/usr/local/bin/old-node']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/n2: the agent needs Node\.js >= 20, and the node \/usr\/local\/bin\/old-node is Node\.js v18\.19\.0 \[EDGECTL_BOOTSTRAP\]/);
    expect(r.stderr).toContain('--runtime PATH');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect((await node.exec(['test', '-e', `${ROOT}/agent`])).code).not.toBe(0);
    expect((await node.exec(['test', '-e', `${ROOT}/secrets`])).code).not.toBe(0);
    expect((await node.exec(['test', '-e', '/etc/systemd/system/edgectl-agent.service'])).code).not.toBe(0);
  });

  it("copies this machine's Node.js when the node has none and its architecture and glibc fit, once", async () => {
    const r = await edgectl(['bootstrap', 'n2', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ status: 'installed', runtime: expect.stringMatching(new RegExp(`^${ROOT}/agent/runtime/[0-9a-f]{20}/node$`)) });
    expect(res.changed).toContain('runtime');
    expect((await node.exec([res.runtime, '--version'])).stdout.trim()).toBe(process.version);
    expect((await node.exec(['systemctl', 'is-active', 'edgectl-agent.service'])).stdout.trim()).toBe('active');
    const again = await edgectl(['bootstrap', 'n2', '--yes', '--json']);
    expect(json(again).nodes[0], again.stderr).toMatchObject({ status: 'unchanged', changed: [], runtime: res.runtime });
  });
});
