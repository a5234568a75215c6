import type { Batch } from '../store/spool.js';
import { type Deliverer, DeliveryError, parseRetryAfter } from './deliverer.js';
import { encodeBatch, FORWARD_CONTENT_TYPE, wireItems } from './wire.js';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import type { CredentialFile } from './credential.js';
import type { HttpClient } from '../../http-client.js';
import { tlsErrorState, type UpstreamTls } from '../../tls-hop/hop-tls.js';

export interface UpstreamTlsOptions {
  /** The fleet CA (PEM) every https:// upstream must chain to. */
  ca?: string;
  /** Told what each attempt at an https:// upstream found of its TLS (status, heartbeat). */
  onTls?: (t: UpstreamTls) => void;
}

/**
 * POST /v1/forward to the next hop, over the agent's HTTP client (keep-alive connections, 30 s
 * idle, per upstream). It does not retry POSTs; the forwarder retries whole batches and the next hop dedupes by id.
 * Upstreams are tried in failover order; after a failover the first one is tried again every 30 s.
 * With the fleet CA pinned (tls.ca, spec.hops.tls) every upstream must be https:// and is
 * verified against that CA only and its URL's host; without it an https:// upstream (a hub
 * behind a public certificate) is verified against the system's roots, as before. A certificate
 * that does not verify (expired, another CA, another name) fails the delivery like an unreachable
 * hop: the batch stays in the spool and is retried, and never goes over plain HTTP.
 */
export class UpstreamDeliverer implements Deliverer {
  get name(): string {
    return this.lastUsed || 'upstream';
  }

  private current = 0;
  private primaryAgainAt = 0;
  lastUsed = '';

  constructor(private urls: string[], private credential: Pick<CredentialFile, 'get' | 'forget'>, private log: Logger, private http: HttpClient, private timeoutMs = 30_000, private tls: UpstreamTlsOptions = {}) {
    if (urls.length === 0) throw new Error('no upstream configured');
    const plain = urls.filter((u) => !u.startsWith('https:'));
    if (tls.ca && plain.length) throw new Error(`${plain[0]} is plain HTTP but the hops speak TLS (upstreamCa is set): every upstream must be https://`);
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
      const https = url.startsWith('https:');
      try {
        const res = await this.http.request(url, {
          method: 'POST', body, timeoutMs: this.timeoutMs, keepAliveMs: 30_000, ...(https ? { ca: this.tls.ca } : {}),
          headers: { 'content-type': FORWARD_CONTENT_TYPE, ...(credential ? { authorization: `Bearer ${credential}` } : {}) },
        });
        if (https) this.tls.onTls?.({ state: 'ok', upstream: url, at: new Date().toISOString() });
        if (res.status >= 200 && res.status < 300) {
          if (idx !== this.current) {
            this.log.warn('failed over to another upstream', { upstream: url });
            this.primaryAgainAt = Date.now() + 30_000;
          }
          this.current = idx;
          this.lastUsed = url;
          return;
        }
        // Not (or no longer) accepted there: a credential written or rotated since is read next time.
        if (res.status === 401 || res.status === 403) this.credential.forget();
        last = new DeliveryError(`${url} answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`, parseRetryAfter(res.headers['retry-after']));
      } catch (err) {
        const t = https ? tlsErrorState(err) : undefined;
        if (t) this.tls.onTls?.({ state: t.state, upstream: url, at: new Date().toISOString(), detail: t.code });
        last = new DeliveryError(`${url}: ${t ? `TLS: ${t.state} (${t.code}), not sent: ` : ''}${errorMessage(err)}`, undefined, { cause: err });
      }
    }
    throw last!;
  }

  /** The HTTP client is the agent's: it closes it. */
  async close(): Promise<void> {}
}
