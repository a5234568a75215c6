import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from '../helpers/paths.js';
import { expectGoldenRender } from './golden.js';
import { tempDir } from './helpers.js';

/** Each directory here is a small fleet whose render is kept in test/golden/<case>/. */
const CASES = path.join(REPO, 'test/golden-fleets');
const GOLDEN = path.join(REPO, 'test/golden');
const cases = (await readdir(CASES, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();

describe('golden feature cases', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => { tmp = await tempDir('cases'); });
  afterAll(() => tmp.cleanup());

  it.each(cases)('%s renders byte for byte as its golden files (UPDATE_GOLDEN=1 rewrites them)', async (name) => {
    // Copied outside git: the manifests would otherwise carry this repo's commit.
    const fleet = path.join(tmp.dir, name, 'fleet');
    await cp(path.join(CASES, name), fleet, { recursive: true });
    await expectGoldenRender(fleet, path.join(tmp.dir, name, 'out'), path.join(GOLDEN, name));
  });

  // So that a golden rewrite cannot quietly drop the feature a case is there for.
  it('features: a FastCGI app, an api app in kong.yml, and a relay accepting the edge behind it', async () => {
    const read = (rel: string) => readFile(path.join(GOLDEN, 'features', rel), 'utf8');
    const edge = JSON.parse(await read('edge-01/agent/agent.json'));
    expect(edge.fastcgi).toEqual([{ app: 'umbrella.portal', socket: '/var/lib/edgectl/run/fastcgi/umbrella.portal.sock', root: '/var/lib/edgectl/current/apps/umbrella.portal', processes: 1, digest: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(await read('edge-01/nginx/conf.d/umbrella.portal.conf')).toContain('fastcgi_pass unix:/var/lib/edgectl/run/fastcgi/umbrella.portal.sock;');
    expect(await read('edge-01/kong/kong.yml')).toContain('- name: "umbrella.billing-api"\n');
    const relay = JSON.parse(await read('relay-01/agent/agent.json'));
    expect(relay.acceptForward).toEqual([{ node: 'edge-01', sha256: '2bf845b87cc822cdcb5fe8f808643eb0af458ee45a622327467d13e4eefc8125', behind: [] }]);
  });
});
