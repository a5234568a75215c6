import { expect, it } from 'vitest';
import { applyProgress } from '../../src/lib/output/apply-progress.js';
import type { ApplyEvent } from '../../src/lib/apply/types.js';

const plain = { red: (s: string) => s, yellow: (s: string) => s, dim: (s: string) => s, bold: (s: string) => s, green: (s: string) => s, cyan: (s: string) => s };
const events: ApplyEvent[] = [
  { time: 't0', node: 'n1', kind: 'start', message: 'none → abc' },
  { time: 't1', node: 'n1', kind: 'step', step: 'upload' },
  { time: 't2', node: 'n1', kind: 'result', outcome: 'failed', step: 'health', message: 'health check failed' },
];

it('off a terminal: one line per start and result, no steps, nothing redrawn', () => {
  let out = '';
  const p = applyProgress((s) => (out += s), { tty: false, colors: plain });
  events.forEach(p.onEvent);
  p.end();
  expect(out).toBe('t0 n1 start none → abc\nt2 n1 failed at health: health check failed\n');
});

it('on a terminal: a live line of the nodes in flight, redrawn in place, and a line per finished node', () => {
  let out = '';
  const p = applyProgress((s) => (out += s), { tty: true, colors: plain });
  events.forEach(p.onEvent);
  p.end();
  expect(out.split('\r\x1b[K').filter(Boolean)).toEqual(['in flight 1: n1:start', 'in flight 1: n1:upload', 'n1 failed: health check failed\n', 'in flight 0: ']);
  expect(out.endsWith('\r\x1b[K')).toBe(true);
});
