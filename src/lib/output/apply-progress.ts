import type { ApplyEvent } from '../apply/types.js';
import { applyEventLine, outcomeText } from './apply-table.js';
import type { Paint } from './validate-report.js';

/** Erase the terminal line: the live line is redrawn in place. */
const CLEAR = '\r\x1b[K';
/** Nodes named on the live line; the count says how many more are in flight. */
const LIVE_NODES = 4;

/**
 * Progress of a rollout (apply, drift --fix). On a terminal: one live line of the nodes in
 * flight and their step, plus one line per finished node. Otherwise one line per node start and
 * result, which reads well in a log. It only writes through `write` (stderr, by the command).
 */
export function applyProgress(write: (s: string) => void, o: { tty: boolean; colors: Paint }): { onEvent: (e: ApplyEvent) => void; end: () => void } {
  const c = o.colors;
  const inFlight = new Map<string, string>();
  const onEvent = (e: ApplyEvent) => {
    if (!o.tty) return void (e.kind !== 'step' && write(applyEventLine(e) + '\n'));
    if (e.kind === 'result') {
      inFlight.delete(e.node);
      write(`${CLEAR}${e.node} ${outcomeText(e.outcome!, c)}${e.message ? c.dim(`: ${e.message.slice(0, 120)}`) : ''}\n`);
    } else inFlight.set(e.node, e.step ?? 'start');
    const live = [...inFlight].slice(0, LIVE_NODES).map(([n, s]) => `${n}:${s}`).join(' ');
    write(`${CLEAR}${c.dim(`in flight ${inFlight.size}: ${live}`)}`);
  };
  return { onEvent, end: () => o.tty && write(CLEAR) };
}
