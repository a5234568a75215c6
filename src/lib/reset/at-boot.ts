import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { outputOf } from '../release/remote.js';
import { resetToWork, type ResetOptions } from './index.js';
import { loadKongAtBoot, type KongAtBootOptions } from './kong-at-boot.js';

/** First retry after this, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 5_000;
const RETRY_MAX_MS = 60_000;

/**
 * Reset-to-work as the agent runs it at boot. The first try is awaited (the agent reads its
 * config after it). A failure (nginx cannot start: its port taken, a disk error) must not stop
 * the agent: HTTPQ keeps taking and storing device data while the node's web side is down, and
 * a crash loop would take that down too. So a failure is logged with nginx's own words and tried
 * again with a back-off (5 s doubling to 60 s) until it succeeds or `stopped` settles. Once it
 * has, Kong's declarative config is loaded where the release has one (kong-at-boot.ts).
 */
export async function resetAtBoot(root: string, opts: ResetOptions & { logger: Logger; stopped: Promise<void>; retryFirstMs?: number; kong?: Pick<KongAtBootOptions, 'admin' | 'firstMs' | 'maxMs'> }): Promise<void> {
  const log = opts.logger;
  let done = false;
  void opts.stopped.then(() => (done = true));
  const attempt = async (): Promise<boolean> => {
    try {
      const r = await resetToWork(root, opts);
      log.info('reset-to-work', { ...r });
      // Then Kong, in the background: it may start after the agent, and HTTPQ must not wait for it.
      if (r.to) void kongAfterReset(root, { ...opts.kong, logger: log, stopped: opts.stopped });
      return true;
    } catch (e) {
      log.error('reset-to-work failed; the agent goes on and tries again', { error: errorMessage(e), ...(outputOf(e) ? { output: outputOf(e) } : {}) });
      return false;
    }
  };
  if (await attempt()) return;
  let wait = opts.retryFirstMs ?? RETRY_FIRST_MS;
  const again = async () => {
    if (done) return;
    if (await attempt()) return;
    wait = Math.min(wait * 2, RETRY_MAX_MS);
    setTimeout(() => void again(), wait).unref();
  };
  setTimeout(() => void again(), wait).unref();
}

async function kongAfterReset(root: string, o: KongAtBootOptions): Promise<void> {
  const { LocalTransport } = await import('../transport/local.js');
  await loadKongAtBoot(new LocalTransport('local', root), root, o).catch((e) => o.logger.error('kong: loading kong.yml at boot failed', { error: errorMessage(e) }));
}
