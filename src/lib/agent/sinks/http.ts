import { type Deliverer, DeliveryError, parseRetryAfter } from '../forward/deliverer.js';
import type { Batch } from '../store/spool.js';
import { sinkLines } from './format.js';
import { errorMessage } from '../../errors.js';
import type { HttpClient } from '../../http-client.js';

/** A webhook: each batch POSTed as NDJSON (one sink record per line); deleted from the spool on 2xx only. */
export class HttpSink implements Deliverer {
  readonly name: string;

  constructor(private url: string, private http: HttpClient, private timeoutMs = 30_000) {
    this.name = `http:${new URL(url).origin}`;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    const msgs = batch.messages();
    let res;
    try {
      res = await this.http.request(this.url, {
        method: 'POST', timeoutMs: this.timeoutMs,
        headers: { 'content-type': 'application/x-ndjson' },
        body: sinkLines(msgs),
      });
    } catch (err) {
      throw new DeliveryError(`webhook ${new URL(this.url).origin}: ${errorMessage(err)}`, undefined, { cause: err });
    }
    if (res.status < 200 || res.status >= 300) throw new DeliveryError(`webhook answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`, parseRetryAfter(res.headers['retry-after']));
  }

  /** The HTTP client is the agent's: it closes it. */
  async close(): Promise<void> {}
}
