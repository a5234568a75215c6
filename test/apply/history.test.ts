import { describe, expect, it } from 'vitest';
import { chooseRollback, historyOf } from '../../src/lib/release/history.js';
import type { NodeState, ReleaseRecord } from '../../src/lib/release/state.js';

const state = (releases: [string, number, ReleaseRecord?][], current: string, good?: string): NodeState => ({
  initialised: true, nginxRunning: true, bash: true, current, good,
  releases: releases.map(([name, mtime]) => ({ name, mtime })).sort((a, b) => b.mtime - a.mtime),
  records: new Map(releases.filter((r) => r[2]).map(([name, , rec]) => [name, rec!])),
});
const A = 'aaaaaaa1111111111111';
const B = 'aaaaaaa2222222222222';
const C = 'ccccccc3333333333333';
const D = 'ddddddd4444444444444';

describe('rollback target and history (pure)', () => {
  it('default: the good link when it is not current, else the newest good release; never failed or staged ones', () => {
    const s = state([[A, 1, { result: 'good' }], [B, 2, { result: 'failed', step: 'health' }], [C, 3, { result: 'staged' }], [D, 4, { result: 'good' }]], D, D);
    expect(chooseRollback(s, undefined)).toEqual({ release: A });
    expect(chooseRollback({ ...s, good: A }, undefined)).toEqual({ release: A });
    expect(chooseRollback(state([[B, 1, { result: 'failed' }], [D, 2, { result: 'good' }]], D, D), undefined)).toMatchObject({ error: expect.stringContaining('no earlier good release') });
  });

  it('--to: a unique digest or commit prefix; an ambiguous one lists what it matches', () => {
    const s = state([[A, 1, { result: 'good', commit: '1234567890abcdef' }], [B, 2, { result: 'good', commit: '1234567aaaaaaaaa' }], [D, 3, { result: 'good' }]], D, D);
    const amb = chooseRollback(s, 'aaaaaaa');
    const msg = 'error' in amb ? amb.error : '';
    expect(msg).toMatch(/^aaaaaaa matches 2 releases on the node: .*; give more digits$/);
    expect(msg).toContain('aaaaaaa1111111111111 (commit 1234567890)');
    expect(msg).toContain('aaaaaaa2222222222222 (commit 1234567aaa)');
    expect(chooseRollback(s, '12345678')).toEqual({ release: A });
    expect(chooseRollback(s, 'aaaaaaa2')).toEqual({ release: B });
    expect(() => chooseRollback(s, 'main')).toThrow(/not a release digest or git revision/);
  });

  it('history lists newest first with results, and marks current and good', () => {
    const h = historyOf(state([[A, 10, { result: 'good', commit: 'abcdef1' }], [B, 20, { result: 'failed', step: 'validate' }]], A, A));
    expect(h.map((e) => [e.release, e.result, e.failedAt, e.current, e.good])).toEqual([[B, 'failed', 'validate', false, false], [A, 'good', undefined, true, true]]);
    expect(h[1].commit).toBe('abcdef1');
  });
});
