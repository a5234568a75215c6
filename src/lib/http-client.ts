import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';

/**
 * The one way the agent and the operator side make outbound HTTP calls (the forwarder to its
 * upstream, the hub's webhook sink, `edgectl spool --admin`): injected through the agent's and
 * the spool client's deps, so that every such call goes through one place. undici does not retry
 * POSTs and neither does this: callers retry whole requests where that is safe.
 */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Buffer | Uint8Array;
  /** Longest wait for the response headers, and between two chunks of its body. */
  timeoutMs: number;
  /** How long an idle connection to this origin is kept for reuse (undici's default: 4 s). */
  keepAliveMs?: number;
  /**
   * https:// only: the one CA (PEM) the server's certificate must chain to, instead of the
   * system's roots (the uplink hops pin the fleet CA). The host name is checked as always.
   */
  ca?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The whole body, read before the promise resolves. */
  body: Buffer;
}

export interface HttpClient {
  /** One request to `url` (path and query included). Rejects when no answer came (connect, timeout, reset). */
  request(url: string | URL, req: HttpRequest): Promise<HttpResponse>;
  /** Closes every connection; a request after close() fails. */
  close(): Promise<void>;
}

/**
 * undici-backed: a keep-alive Pool per origin (and keep-alive setting), made on the first
 * request there, with `connections` sockets at most; close() closes them all.
 */
export function createHttpClient(opts: { connections?: number } = {}): HttpClient {
  const pools = new Map<string, Promise<Dispatcher>>();
  let closed = false;
  const pool = (origin: string, keepAliveMs: number | undefined, ca: string | undefined): Promise<Dispatcher> => {
    const key = `${origin} ${keepAliveMs ?? ''} ${ca ? createHash('sha256').update(ca).digest('hex') : ''}`;
    let p = pools.get(key);
    if (!p) {
      p = import('undici').then(({ Pool }) => new Pool(origin, {
        connections: opts.connections ?? 2,
        ...(keepAliveMs !== undefined ? { keepAliveTimeout: keepAliveMs } : {}),
        ...(ca ? { connect: { ca, rejectUnauthorized: true } } : {}),
      }));
      pools.set(key, p);
    }
    return p;
  };
  return {
    async request(url, req) {
      if (closed) throw new Error('the HTTP client is closed');
      const u = typeof url === 'string' ? new URL(url) : url;
      if (req.ca && u.protocol !== 'https:') throw new Error(`${u.origin}: a pinned CA is for https:// only`);
      const dispatcher = await pool(u.origin, req.keepAliveMs, req.ca);
      const res = await dispatcher.request({
        path: u.pathname + u.search, method: req.method, headers: req.headers, body: req.body,
        headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs,
      });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    },
    async close() {
      closed = true;
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map(async (p) => (await p).close().catch(() => {})));
    },
  };
}
