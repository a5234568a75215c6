import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { EdgectlError } from '../errors.js';
import type { HttpRequest, HttpResponse } from './types.js';

/** Health checks and admin APIs answer small bodies; a runaway one must not fill memory. */
const MAX_BODY = 16 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * One HTTP/1.1 request over a stream we already hold: a TCP socket (local) or an SSH
 * direct-tcpip channel (remote). node:http does the protocol; we only hand it the socket.
 */
export async function httpOver(node: string, socket: Duplex, req: HttpRequest): Promise<HttpResponse> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const where = `${req.method} http://${req.host}:${req.port}${req.path} on ${node}`;
  return new Promise<HttpResponse>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, res?: HttpResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res!);
    };
    const timer = setTimeout(() => finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: no response within ${timeoutMs} ms`)), timeoutMs);
    const headers: Record<string, string> = { host: `${req.host}:${req.port}`, connection: 'close', ...lower(req.headers ?? {}) };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    let r: ReturnType<typeof request>;
    try {
      r = request({ method: req.method, path: req.path, headers, createConnection: () => socket as never }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: response body over ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
          finish(undefined, { status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks) });
        });
        res.on('error', (e) => finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: ${e.message}`, { cause: e })));
      });
    } catch (e) {
      // node:http refuses header values with CR/LF: an injected header never reaches the wire.
      return finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: ${(e as Error).message}`, { cause: e }));
    }
    socket.on('error', (e: Error) => finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: ${e.message}`, { cause: e })));
    r.on('error', (e) => finish(new EdgectlError('EDGECTL_TRANSPORT', `${where}: ${e.message}`, { cause: e })));
    r.end(req.body);
  });
}

function lower(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
