import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { acquireLock, makeHolder, releaseLock } from '../release/lock.js';
import { nginxReloadOrStart, waitForConfig, type NginxTarget } from '../release/nginx.js';
import { readState } from '../release/state.js';
import { clearIntent, markGood, removeCurrent, switchCurrent } from '../release/switch.js';
import type { Transport } from '../transport/types.js';

export interface ResetOptions {
  /** The node's root; defaults to the transport's root (required with a transport that has none). */
  root?: string;
  /** nginx binary on the node; default /usr/sbin/nginx. */
  nginxBinary?: string;
  /** When given, check that nginx serves current's config id here after a start or reload. */
  check?: { host: string; port: number };
  logger?: Logger;
  /** The wall clock for the lock and the intent it writes; default: the system's. */
  now?: () => Date;
}

export interface ResetResult {
  /** switched: current went back to good. cleared: an unfinished first release was removed. */
  release: 'unchanged' | 'switched' | 'cleared' | 'none';
  nginx: 'running' | 'started' | 'reloaded' | 'not-started';
  from: string | null;
  to: string | null;
  notes: string[];
}

/**
 * reset-to-work, run by the agent at boot: if an apply died midway (current != good, or an
 * intent left behind), put current back to good; then make sure nginx runs from current.
 * Idempotent: a second call on a working node changes nothing.
 */
export async function resetToWork(transportOrRoot: Transport | string, opts: ResetOptions = {}): Promise<ResetResult> {
  const log = opts.logger ?? silentLogger;
  let t: Transport;
  if (typeof transportOrRoot === 'string') {
    const { LocalTransport } = await import('../transport/local.js');
    t = new LocalTransport('local', transportOrRoot);
  } else t = transportOrRoot;
  const root = opts.root ?? (typeof transportOrRoot === 'string' ? transportOrRoot : t.root);
  if (!root) throw new Error('resetToWork needs the node root');
  const ng: NginxTarget = { binary: opts.nginxBinary ?? '/usr/sbin/nginx', host: opts.check?.host ?? '127.0.0.1', port: opts.check?.port ?? 80 };
  let state = await readState(t, root);
  const res: ResetResult = { release: 'unchanged', nginx: state.nginxRunning ? 'running' : 'not-started', from: state.current ?? null, to: state.current ?? null, notes: [] };
  const unfinished = !!(state.intent || state.intentRaw);
  if (!state.current && !state.good) return { ...res, release: 'none', notes: ['no release on the node'] };

  let switched = false;
  if (state.current !== state.good || unfinished) {
    const now = opts.now ?? (() => new Date());
    const holder = makeHolder('edgectl agent reset-to-work', undefined, now().getTime());
    let lock: string | undefined;
    try {
      lock = await acquireLock(t, root, holder, now().getTime());
    } catch (e) {
      // An apply in flight right now owns the node: it will finish or roll back itself.
      res.notes.push(`not switching: ${errorMessage(e)}`);
      log.warn('reset-to-work: node is locked, leaving releases alone', { error: errorMessage(e) });
    }
    if (lock) {
      try {
        state = await readState(t, root);
        if (state.good && state.current !== state.good) {
          await switchCurrent(t, root, { op: 'reset', from: state.current ?? null, to: state.good, by: holder.holder, at: now().toISOString() });
          res.release = 'switched';
          res.to = state.good;
          switched = true;
          log.info('reset-to-work: current switched back to good', { from: state.current, to: state.good });
        } else if (!state.good && state.current) {
          // A first release that never passed its health check: the node had none before.
          await removeCurrent(t, root);
          res.release = 'cleared';
          res.to = null;
          res.notes.push(`removed unverified first release ${state.current}`);
          return res;
        } else if (state.intent || state.intentRaw) {
          switched = true; // the switch happened but its reload may not have: do it now
        }
      } finally {
        await releaseLock(t, root, lock).catch(() => {});
      }
    }
  }
  if (switched || !state.nginxRunning) {
    const r = await nginxReloadOrStart(t, root, ng);
    res.nginx = r.action;
    if (opts.check && state.good) {
      const m = (await readState(t, root)).currentManifest;
      if (m && !(await waitForConfig(t, ng, m.nginxConfigId, { oldWorkers: r.oldWorkers })).ok) res.notes.push('nginx does not serve the config of current');
    }
    if (switched && state.good && res.release === 'switched') await markGood(t, root, state.good);
    else if (switched) await clearIntent(t, root);
  }
  return res;
}
