import { describe, expect, it } from 'vitest';
import { computePlan, type DesiredNode, type ObservedNode } from '../../src/lib/plan/compute.js';
import { loadPlan, planView, serialisePlan } from '../../src/lib/plan/file.js';
import { planDiffText } from '../../src/lib/output/plan-diff.js';
import { planTable } from '../../src/lib/output/plan-table.js';
import { layout } from '../../src/lib/release/layout.js';
import { parseState } from '../../src/lib/release/state.js';
import { assembleBundle } from '../../src/lib/render/bundle.js';
import { CONFIG_ID_PLACEHOLDER } from '../../src/lib/render/nginx.js';

/** computePlan is pure: plain data in, a versioned plan out; the views are pure functions of it. */
const plain = { red: (s: string) => s, yellow: (s: string) => s, dim: (s: string) => s, bold: (s: string) => s, green: (s: string) => s, cyan: (s: string) => s };
const conf = (extra: string) => `events {}\nhttp { map $host $x { default "${CONFIG_ID_PLACEHOLDER}"; } ${extra} }\n`;
const kong = (key: string, port: number) => Buffer.from(`_format_version: "3.0"\nservices:\n- name: s\n  host: h\n  port: ${port}\nconsumers:\n- username: u\n  keyauth_credentials:\n  - id: k\n    key: ${key}\n`);
const bundle = (extra: string, k: Buffer) => assembleBundle('n1', Buffer.from(conf(extra)), [{ path: 'kong/kong.yml', data: k, mode: 0o644 }, { path: 'agent/agent.json', data: Buffer.from('{}\n'), mode: 0o644 }], { edgectl: 't', fleet: { name: 'f', commit: 'abcdef1234', dirty: false } });

function desired(b: ReturnType<typeof bundle>): DesiredNode {
  return { node: 'n1', role: 'edge', route: ['r1', 'n1'], root: '/srv/edgectl/n1', nginx: { binary: '/usr/sbin/nginx', host: '127.0.0.1', port: 80 }, kong: true, health: [], manifest: b.manifest, files: new Map(b.files.map((f) => [f.path, f.data])) };
}

function observedOn(b: ReturnType<typeof bundle>, extra = ''): ObservedNode {
  const name = b.manifest.digest.slice(0, 20);
  const state = parseState(`current\treleases/${name}\ngood\treleases/${name}\nrelease\t${name}\t100\n${extra}nginx\trunning\nmanifest\n${JSON.stringify(b.manifest)}`);
  return { reachable: true, state, files: new Map(b.files.map((f) => [f.path, f.data])) };
}

const input = { createdAt: '2026-01-01T00:00:00.000Z', edgectl: 't', fleet: { name: 'f', commit: 'abcdef1234', dirty: false }, diff: true };

describe('computePlan', () => {
  const v1 = bundle('', kong('SECRET-ONE', 80));
  const v2 = bundle('server { listen 81; }', kong('SECRET-TWO', 8080));

  it('no change, update with file lists, unreachable, finish after an interrupted switch', () => {
    expect(computePlan([desired(v1)], new Map([['n1', observedOn(v1)]]), input).nodes[0].action).toBe('none');
    const p = computePlan([desired(v2)], new Map([['n1', observedOn(v1)]]), input);
    expect(p.format).toBe('edgectl-plan/v1');
    expect(p.nodes[0]).toMatchObject({ action: 'update', files: { added: [], changed: ['kong/kong.yml', 'nginx/nginx.conf'], removed: [] } });
    expect(p.summary).toEqual({ nodes: 1, changes: 1, unchanged: 0, unreachable: 0 });
    expect(computePlan([desired(v1)], new Map([['n1', { reachable: false, error: 'connect timeout' }]]), input).nodes[0]).toMatchObject({ action: 'unreachable', reason: 'connect timeout' });
    const intent = `intent\t{"op":"activate","from":null,"to":"${v1.manifest.digest.slice(0, 20)}","by":"x","at":"t"}\n`;
    expect(computePlan([desired(v1)], new Map([['n1', observedOn(v1, intent)]]), input).nodes[0].action).toBe('finish');
  });

  it('diffs nginx files as unified diffs and Kong by entity, with the key redacted everywhere', () => {
    const p = computePlan([desired(v2)], new Map([['n1', observedOn(v1)]]), input);
    const text = planDiffText(p, plain);
    expect(text).toContain('+++ b/nginx/nginx.conf');
    expect(text).toMatch(/^\+.*server \{ listen 81; \}/m);
    expect(text).toContain('port: 80 → 8080');
    expect(text).toContain('key: (redacted) → (redacted)');
    for (const s of [text, JSON.stringify(planView(p)), planTable(p, plain).rows.flat().join(' ')]) {
      expect(s).not.toContain('SECRET-ONE');
      expect(s).not.toContain('SECRET-TWO');
    }
    expect(planTable(p, plain).rows[0].slice(0, 3)).toEqual(['n1', 'edge', 'via r1']);
  });

  it('a saved plan round-trips with its bytes, and every byte is checked on load', async () => {
    const p = computePlan([desired(v2)], new Map([['n1', observedOn(v1)]]), input);
    const blobs = new Map(v2.files.map((f) => [v2.manifest.files[f.path].sha256, f.data]));
    const text = serialisePlan(p, blobs);
    const { plan, bundles } = await loadPlan(text, 'p.json');
    expect(plan.nodes[0].desired).toEqual(p.nodes[0].desired);
    expect(bundles.get('n1')!.files.map((f) => f.path)).toEqual(Object.keys(v2.manifest.files));
    const bad = JSON.parse(text);
    bad.nodes[0].root = '/srv/../etc';
    await expect(loadPlan(JSON.stringify(bad), 'p.json')).rejects.toThrow(/not a safe absolute path/);
    await expect(loadPlan(JSON.stringify(bad), 'p.json')).rejects.toMatchObject({ code: 'EDGECTL_PLAN_INVALID' });
    // A plan is checked by the fleet's release-root rule too: an edited plan cannot aim apply at /etc.
    for (const root of ['/etc/cron.d', '/root/.ssh', '/proc/self/root/etc', '/srv']) {
      bad.nodes[0].root = root;
      await expect(loadPlan(JSON.stringify(bad), 'p.json'), root).rejects.toThrow(/nodes\[0\]\.root: release root must be a directory below \/var\/lib\//);
    }
    // --local plans: the root is the local directory plus the node's name, nothing else.
    bad.local = { root: '/tmp/local-nodes' };
    bad.nodes[0].root = '/tmp/local-nodes/n1';
    expect((await loadPlan(JSON.stringify(bad), 'p.json')).plan.nodes[0].root).toBe('/tmp/local-nodes/n1');
    bad.nodes[0].root = '/etc/cron.d';
    await expect(loadPlan(JSON.stringify(bad), 'p.json')).rejects.toThrow(/is not the local directory of node n1/);
    const evil = JSON.parse(text);
    const sha = v2.manifest.files['nginx/nginx.conf'].sha256;
    evil.blobs[sha] = Buffer.from('load_module /tmp/x.so;\n').toString('base64');
    await expect(loadPlan(JSON.stringify(evil), 'p.json')).rejects.toThrow(/do not match its sha256/);
    // A tampered plan has its own code (it used to be EDGECTL_USAGE, as if a flag were wrong).
    await expect(loadPlan(JSON.stringify(evil), 'p.json')).rejects.toMatchObject({ code: 'EDGECTL_PLAN_INVALID' });
    await expect(loadPlan('{', 'p.json')).rejects.toMatchObject({ code: 'EDGECTL_PLAN_INVALID' });
  });

  it('a name that is not a release is a release error, not a transport one', () => {
    expect(() => layout('/var/lib/edgectl/n1').release('../../etc')).toThrow(expect.objectContaining({ code: 'EDGECTL_RELEASE_INVALID' }));
  });

  it('a saved plan whose nginx files could load code is refused, whatever the spelling and whatever the file name', async () => {
    // Consistent plans (hashes, digest and config id all recomputed), as an editor of the file could make them.
    const cases: [file: string, text: string, where: RegExp][] = [
      ['nginx/nginx.conf', conf('add_header X-A "#"; load_module /tmp/x.so;'), /nginx\/nginx\.conf:2:\d+: the directive "load_module"/],
      ['nginx/nginx.conf', conf('"load_module" /tmp/x.so;'), /nginx\/nginx\.conf:2:\d+: the directive "load_module"/],
      ['nginx/mime.types', 'types { text/html html; } load_module /tmp/x.so; types { text/css css; }\n', /nginx\/mime\.types:1:27: the directive "load_module"/],
      ['nginx/conf.d/evil.txt', "'ssl_engine' pkcs11;\n", /nginx\/conf\.d\/evil\.txt:1:1: the directive "ssl_engine"/],
      ['nginx/conf.d/x.conf', 'include /etc/nginx/modules-enabled/*.conf;\n', /x\.conf:1:1: include .*only a relative path inside the bundle/],
    ];
    for (const [file, text, where] of cases) {
      const others = [{ path: 'agent/agent.json', data: Buffer.from('{}\n'), mode: 0o644 }];
      if (file !== 'nginx/nginx.conf') others.push({ path: file, data: Buffer.from(text), mode: 0o644 });
      const b = assembleBundle('n1', Buffer.from(file === 'nginx/nginx.conf' ? text : conf('')), others, { edgectl: 't', fleet: input.fleet });
      const p = computePlan([desired(b)], new Map([['n1', observedOn(v1)]]), input);
      const saved = serialisePlan(p, new Map(b.files.map((f) => [b.manifest.files[f.path].sha256, f.data])));
      await expect(loadPlan(saved, 'p.json'), file).rejects.toThrow(where);
    }
  });
});
