import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { KONG_ADMIN, kongApply, type KongStep } from '../release/kong.js';
import { outputOf } from '../release/remote.js';
import type { Transport } from '../transport/types.js';

export interface KongAtBootOptions {
  logger: Logger;
  /** Settles when the agent stops: no more tries. */
  stopped: Promise<void>;
  /** Kong's admin API on the node (loopback); default 127.0.0.1:8001. */
  admin?: { host: string; port: number };
  /** First retry after this (default 2 s), doubling up to maxMs (default 60 s). */
  firstMs?: number;
  maxMs?: number;
}

/**
 * Kong's part of reset-to-work. DB-less Kong keeps its declarative config in memory, so after a
 * power cut it comes back with none (unless the node's kong.conf points it at a file), and the
 * node's api apps answer 404 until someone loads it again. So, when the release nginx now runs
 * from carries `kong/kong.yml`, the agent loads it into Kong (the same `POST /config?check_hash=1`
 * and hash check as apply's Kong step; an unchanged config is a 304 that changes nothing). Kong
 * often starts after the agent: until its admin API answers, the agent tries again, 2 s doubling
 * to 60 s, in the background (HTTPQ serves meanwhile), until it is loaded, or the node turns out
 * to have no Kong at all (skipped, said once), or the agent stops. Returns what it did.
 */
export async function loadKongAtBoot(t: Transport, root: string, o: KongAtBootOptions): Promise<KongStep | 'none' | 'stopped'> {
  const file = `${root}/current/kong/kong.yml`;
  const yml = await t.readFile(file).catch(() => undefined);
  if (!yml) return 'none';
  let stopped = false;
  void o.stopped.then(() => (stopped = true));
  let wait = o.firstMs ?? 2_000;
  for (let tries = 1; ; tries++) {
    if (stopped) return 'stopped';
    try {
      const r = await kongApply(t, yml, o.admin ?? KONG_ADMIN);
      if (r.outcome === 'skipped') o.logger.info('kong: not installed on the node; kong.yml not loaded', { note: r.note });
      else o.logger.info('kong: declarative config loaded at boot', { outcome: r.outcome, tries });
      return r;
    } catch (e) {
      if (tries === 1 || tries % 10 === 0) o.logger.warn('kong: cannot load kong.yml yet; trying again', { error: errorMessage(e), ...(outputOf(e) ? { output: outputOf(e) } : {}), tries, nextMs: wait });
    }
    await Promise.race([o.stopped, new Promise((r) => setTimeout(r, wait).unref())]);
    wait = Math.min(wait * 2, o.maxMs ?? 60_000);
  }
}
