import { mkdtemp, readFile, rm, symlink, writeFile, mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordCredentials, setCredentialInText } from '../../src/lib/bootstrap/record-credential.js';
import { parseAllDocuments } from 'yaml';

const parseYamlAll = (text: string): any[] => parseAllDocuments(text).map((d) => d.toJS());

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);

const block = `# north edges
apiVersion: edgectl/v1
kind: Node
metadata:
  name: e1
spec:
  # the first edge
  role: edge
  address: 203.0.113.10
---
apiVersion: edgectl/v1
kind: Node
metadata: { name: e2 }
spec: { role: edge, address: 203.0.113.11, credential: { sha256: ${H1} } }
`;

describe('bootstrap writes a node credential into its fleet document', () => {
  it('inserts one line into a block spec and leaves the rest of the file byte for byte', () => {
    const r = setCredentialInText(block, 'e1', H2);
    if ('error' in r) throw new Error(r.error);
    expect(r.text).toBe(block.replace('  # the first edge\n', `  # the first edge\n  credential: { sha256: ${H2} }\n`));
    expect(parseYamlAll(r.text)[0].spec.credential.sha256).toBe(H2);
  });

  it('replaces an existing hash in place, in a flow spec too', () => {
    const r = setCredentialInText(block, 'e2', H2);
    if ('error' in r) throw new Error(r.error);
    expect(r.text).toBe(block.replace(H1, H2));
  });

  it('inserts into a flow spec without a credential', () => {
    const text = 'kind: Node\nmetadata: { name: e3 }\nspec: { role: edge, address: 203.0.113.12 }\n';
    const r = setCredentialInText(text, 'e3', H1);
    if ('error' in r) throw new Error(r.error);
    expect(parseYamlAll(r.text)[0].spec).toEqual({ credential: { sha256: H1 }, role: 'edge', address: '203.0.113.12' });
  });

  it('refuses what it would have to guess: a missing node, a node twice, a credential that is not a map, a bad digest', () => {
    expect(setCredentialInText(block, 'nope', H1)).toEqual({ error: 'no Node document named nope' });
    expect(setCredentialInText(block + '---\n' + block.split('---\n')[1], 'e2', H1)).toEqual({ error: 'node e2 is defined 2 times' });
    expect(setCredentialInText('kind: Node\nmetadata: { name: x }\nspec:\n  credential: yes\n', 'x', H1)).toEqual({ error: 'its spec.credential is not a mapping' });
    expect(setCredentialInText(block, 'e1', 'A'.repeat(64))).toHaveProperty('error');
    expect(setCredentialInText(block, 'e1', `${H1}\n  role: relay`)).toHaveProperty('error');
  });
});

describe('recordCredentials on a fleet directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ec-record-'));
    await mkdir(join(dir, 'nodes'));
    await writeFile(join(dir, 'nodes', 'north.yaml'), block);
    await mkdir(join(dir, 'elsewhere'));
    await writeFile(join(dir, 'elsewhere', 'target.yaml'), block);
    await symlink('../elsewhere/target.yaml', join(dir, 'nodes', 'linked.yaml'));
    await symlink('../elsewhere', join(dir, 'linkdir'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes every node of a file in one replacement and leaves no temp file', async () => {
    const done = recordCredentials(dir, [{ node: 'e1', file: 'nodes/north.yaml', sha256: H2 }, { node: 'e2', file: 'nodes/north.yaml', sha256: H2.replace(/b/g, 'c') }]);
    expect(done).toEqual([{ node: 'e1', file: 'nodes/north.yaml' }, { node: 'e2', file: 'nodes/north.yaml' }]);
    const docs = parseYamlAll(await readFile(join(dir, 'nodes', 'north.yaml'), 'utf8'));
    expect(docs.map((d) => d.spec.credential.sha256)).toEqual([H2, 'c'.repeat(64)]);
    expect(await readdir(join(dir, 'nodes'))).toEqual(['linked.yaml', 'north.yaml']);
  });

  it('never writes through a symbolic link (the file or a directory above it), nor outside the fleet', async () => {
    expect(() => recordCredentials(dir, [{ node: 'e1', file: 'nodes/linked.yaml', sha256: H1 }])).toThrow(/symbolic link/);
    expect(() => recordCredentials(dir, [{ node: 'e1', file: 'linkdir/target.yaml', sha256: H1 }])).toThrow(/cannot record/);
    expect(() => recordCredentials(dir, [{ node: 'e1', file: '../x.yaml', sha256: H1 }])).toThrow(/not a path inside the fleet/);
    expect(await readFile(join(dir, 'elsewhere', 'target.yaml'), 'utf8')).toBe(block);
  });
});
