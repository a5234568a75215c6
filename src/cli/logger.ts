import type { Logger } from '../lib/logger.js';
import { colorsFor } from './output.js';

/**
 * The one logger of every operator command: warnings and errors on stderr, never stdout (so
 * `--json | jq` works). Info is progress: shown where the command promises it (render's
 * "rendered 500/2000 nodes"), else only with EDGECTL_DEBUG, like debug. The agent is the
 * exception: a daemon, it logs JSON lines (lib/logger.ts jsonLogger).
 */
export function stderrLogger(o: { progress?: boolean } = {}): Logger {
  const c = colorsFor(process.stderr);
  const debug = !!process.env.EDGECTL_DEBUG;
  const line = (s: string, f?: Record<string, unknown>) => process.stderr.write(s + (f && Object.keys(f).length ? c.dim(' ' + JSON.stringify(f)) : '') + '\n');
  return {
    debug: (m, f) => debug && line(c.dim(m), f),
    info: (m, f) => (debug || o.progress) && line(c.dim(m), f),
    warn: (m, f) => line(`${c.yellow('warning')} ${m}`, f),
    error: (m, f) => line(`${c.red('error')} ${m}`, f),
  };
}
