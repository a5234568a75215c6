import type { Dispatcher } from 'undici';
import type { Batch } from '../store/spool.js';
import { type Deliverer, DeliveryError, parseRetryAfter } from './deliverer.js';
import { encodeBatch, FORWARD_CONTENT_TYPE, wireItems } from './wire.js';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import type { CredentialFile } from './credential.js';

/**
 * POST /v1/forward to the next hop, over keep-alive connections (undici Pool per upstream).
 * undici does not retry POSTs; the forwarder retries whole batches and the next hop dedupes by id.
 * Upstreams are tried in failover order; after a failover the first one is tried again every 30 s.
 */
export class UpstreamDeliverer implements Deliverer {
  get name(): string {
    return this.lastUsed || 'upstream';
  }

  private pools = new Map<string, Dispatcher>();
  private current = 0;
  private primaryAgainAt = 0;
  lastUsed = '';

  constructor(private urls: string[], private credential: Pick<CredentialFile, 'get' | 'forget'>, private log: Logger, private timeoutMs = 30_000) {
    if (urls.length === 0) throw new Error('no upstream configured');
  }

  private async pool(url: string): Promise<Dispatcher> {
    let p = this.pools.get(url);
    if (!p) {
      const { Pool } = await import('undici');
      p = new Pool(new URL(url).origin, { connections: 2, keepAliveTimeout: 30_000, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
      this.pools.set(url, p);
    }
    return p;
  }

  async deliver(batch: Pick<Batch, 'records'>): Promise<void> {
    // Chunks go on as runs, their bodies as stored: no message is decoded on the way.
    const body = encodeBatch(wireItems(batch.records));
    if (this.current !== 0 && Date.now() >= this.primaryAgainAt) this.current = 0;
    let last: DeliveryError | undefined;
    const credential = await this.credential.get();
    for (let i = 0; i < this.urls.length; i++) {
      const idx = (this.current + i) % this.urls.length;
      const url = this.urls[idx];
      try {
        const pool = await this.pool(url);
        const u = new URL(url);
        const res = await pool.request({
          path: u.pathname + u.search, method: 'POST', body,
          headers: { 'content-type': FORWARD_CONTENT_TYPE, ...(credential ? { authorization: `Bearer ${credential}` } : {}) },
        });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          if (idx !== this.current) {
            this.log.warn('failed over to another upstream', { upstream: url });
            this.primaryAgainAt = Date.now() + 30_000;
          }
          this.current = idx;
          this.lastUsed = url;
          return;
        }
        // Not (or no longer) accepted there: a credential written or rotated since is read next time.
        if (res.statusCode === 401 || res.statusCode === 403) this.credential.forget();
        last = new DeliveryError(`${url} answered ${res.statusCode}: ${text.slice(0, 200)}`, parseRetryAfter(res.headers['retry-after']));
      } catch (err) {
        last = new DeliveryError(`${url}: ${errorMessage(err)}`, undefined, { cause: err });
      }
    }
    throw last!;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => {})));
  }
}
