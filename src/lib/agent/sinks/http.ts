import type { Dispatcher } from 'undici';
import { type Deliverer, DeliveryError, parseRetryAfter } from '../forward/deliverer.js';
import type { Batch } from '../store/spool.js';
import { sinkLines } from './format.js';
import { errorMessage } from '../../errors.js';

/** A webhook: each batch POSTed as NDJSON (one sink record per line); deleted from the spool on 2xx only. */
export class HttpSink implements Deliverer {
  readonly name: string;
  private pool?: Dispatcher;

  constructor(private url: string, private timeoutMs = 30_000) {
    this.name = `http:${new URL(url).origin}`;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    const msgs = batch.messages();
    const { Pool } = await import('undici');
    const u = new URL(this.url);
    this.pool ??= new Pool(u.origin, { connections: 2, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
    let res;
    try {
      res = await this.pool.request({
        path: u.pathname + u.search, method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: sinkLines(msgs),
      });
    } catch (err) {
      throw new DeliveryError(`webhook ${u.origin}: ${errorMessage(err)}`, undefined, { cause: err });
    }
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new DeliveryError(`webhook answered ${res.statusCode}: ${text.slice(0, 200)}`, parseRetryAfter(res.headers['retry-after']));
  }

  async close(): Promise<void> {
    await this.pool?.close().catch(() => {});
  }
}
