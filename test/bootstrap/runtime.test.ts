import { describe, expect, it } from 'vitest';
import { chooseRuntime, type LocalRuntime, type NodeFacts } from '../../src/lib/bootstrap/runtime.js';

/** Which Node.js runs the agent on a node (the decision only; the real nodes are in no-runtime.test.ts). */
const here: LocalRuntime = { arch: 'x64', glibc: '2.36', version: 'v20.20.2' };
const bare: NodeFacts = { node: 'e1', arch: 'x86_64', libc: 'glibc', glibc: '2.36' };

describe('chooseRuntime', () => {
  it("uses the node's own Node.js when it is new enough", () => {
    expect(chooseRuntime({ ...bare, runtime: '/usr/bin/node', version: 'v22.1.0' }, undefined, here)).toEqual({ use: '/usr/bin/node' });
  });

  it("copies this machine's when the node has none (or an old one) and arch and glibc fit", () => {
    expect(chooseRuntime(bare, undefined, here)).toEqual({ copy: true });
    expect(chooseRuntime({ ...bare, runtime: '/usr/bin/node', version: 'v18.19.0', glibc: '2.39' }, undefined, here)).toEqual({ copy: true });
  });

  it('fails, naming what the node needs and --runtime, when the copy would not run there', () => {
    const cases: NodeFacts[] = [
      { ...bare, arch: 'aarch64' }, // another architecture
      { ...bare, libc: 'musl', glibc: undefined }, // Alpine, OpenWrt
      { ...bare, glibc: '2.31' }, // older glibc than this build runs on
    ];
    for (const f of cases) {
      let err: any;
      try {
        chooseRuntime(f, undefined, here);
      } catch (e) {
        err = e;
      }
      expect(err?.code, JSON.stringify(f)).toBe('EDGECTL_BOOTSTRAP');
      expect(err.message).toBe('e1: the agent needs Node.js >= 20, and the node has no Node.js (no `node` on its PATH, /usr/local/bin or /usr/bin)');
      expect(err.hint).toContain(`Node.js >= 20 for ${f.arch} (${f.libc})`);
      expect(err.hint).toContain('--runtime PATH');
      expect(err.hint).toContain('Nothing was installed');
    }
  });

  it('never replaces a --runtime the operator named, even when a copy would fit', () => {
    expect(() => chooseRuntime({ ...bare, runtime: '/opt/node/bin/node', version: 'v18.0.0' }, '/opt/node/bin/node', here)).toThrow(/\/opt\/node\/bin\/node is Node\.js v18\.0\.0/);
  });
});
