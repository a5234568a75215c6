import type { ServerResponse } from 'node:http';
import type { AgentStats } from '../stats.js';

/** JSON answers with an error code a device can act on, and Retry-After where waiting helps. */
export function send(res: ServerResponse, stats: AgentStats | undefined, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, stats, status, JSON.stringify(body), headers);
}

/** send() for a body already in JSON text: not stringified again. */
export function sendJson(res: ServerResponse, stats: AgentStats | undefined, status: number, json: string, headers: Record<string, string> = {}): void {
  stats?.response(status);
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

export function fail(res: ServerResponse, stats: AgentStats | undefined, status: number, error: string, message: string, retryAfter?: number): void {
  send(res, stats, status, { error, message }, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) });
}

export function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
