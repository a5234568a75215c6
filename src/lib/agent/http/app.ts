import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AgentContext } from '../context.js';
import { handleEnqueue } from './device.js';
import { handleForward } from './forward-api.js';
import { bearer } from './intake.js';
import { fail, send, text } from './respond.js';
import { collectStatus, renderMetrics } from '../status.js';
import { sinkRecord } from '../sinks/format.js';
import { RE } from '../../fleet/values.js';
import { INTERNAL_TENANT } from '../forward/wire.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function guard(ctx: AgentContext, res: ServerResponse, p: Promise<void>): void {
  p.catch((err) => {
    ctx.log.error('request failed', { error: String(err) });
    fail(res, ctx.stats, 500, 'internal', 'internal error');
  });
}

/**
 * `config` is the sha256 of the agent.json bytes this agent runs: apply compares it with the
 * release it switched to, to know that a reload took effect; `version` is the agent build that
 * answers (bootstrap's version digest, null when not run from <root>/agent/<version>/), which an
 * agent upgrade waits for.
 */
function healthz(ctx: AgentContext, res: ServerResponse): void {
  const ok = ctx.spool.state === 'open';
  const n = ctx.node;
  send(res, undefined, ok ? 200 : 503, { ok, store: ctx.spool.state, version: n?.version ?? null, config: n?.configDigest ?? null, fastcgi: n?.fastcgi?.summary() ?? null, reload: n?.reload ? { at: n.reload.at, outcome: n.reload.outcome } : null });
}

/** Admin GETs: health, and status and metrics, which name every tenant and topic (so not on the device API). */
async function common(ctx: AgentContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (req.method !== 'GET') return false;
  if (path === '/healthz') {
    healthz(ctx, res);
    return true;
  }
  if (path === '/status') {
    send(res, undefined, 200, await collectStatus(ctx));
    return true;
  }
  if (path === '/metrics') {
    text(res, 200, renderMetrics(await collectStatus(ctx)), 'text/plain; version=0.0.4; charset=utf-8');
    return true;
  }
  return false;
}

/**
 * The device and hop API (what nginx proxies, and what a tenant's app could reach on the node's
 * loopback): devices, hops and /healthz. Built without a socket: pass it to http.createServer.
 */
export function buildDeviceApp(ctx: AgentContext): Handler {
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method === 'POST' && path.startsWith('/v1/q/')) {
      guard(ctx, res, handleEnqueue(ctx, req, res, decodeURIComponentSafe(path.slice(6))));
      return;
    }
    if (req.method === 'POST' && path === '/v1/forward') {
      guard(ctx, res, handleForward(ctx, req, res));
      return;
    }
    if (req.method === 'GET' && path === '/healthz') return healthz(ctx, res);
    fail(res, ctx.stats, 404, 'not_found', 'no such endpoint');
  };
}

function decodeURIComponentSafe(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Is this request from someone holding the admin token? Loopback is no authentication: any
 * process on the node, or a tenant's proxy app pointed at 127.0.0.1, can connect.
 */
function adminAuthorized(ctx: AgentContext, req: IncomingMessage): boolean {
  const token = bearer(req);
  if (!token || !ctx.adminTokenHash) return false;
  return timingSafeEqual(createHash('sha256').update(token).digest(), ctx.adminTokenHash);
}

/** The loopback admin API: status, peek and purge for `edgectl spool`, for holders of the admin token. Never proxied by nginx. */
export function buildAdminApp(ctx: AgentContext): Handler {
  return (req, res) => {
    if (!adminAuthorized(ctx, req)) {
      res.setHeader('www-authenticate', 'Bearer');
      return fail(res, undefined, 401, 'unauthorized', 'the admin API needs Authorization: Bearer <the agent\'s admin token>');
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    guard(ctx, res, (async () => {
      if (await common(ctx, req, res, url.pathname)) return;
      const tenant = url.searchParams.get('tenant') ?? undefined;
      const topic = url.searchParams.get('topic') ?? undefined;
      if ((tenant && tenant !== INTERNAL_TENANT && !RE.dnsLabel.test(tenant)) || (topic && !RE.topic.test(topic))) return fail(res, undefined, 400, 'invalid_name', 'tenant/topic must be plain names');
      if (req.method === 'GET' && url.pathname === '/v1/spool') {
        const s = await collectStatus(ctx);
        return send(res, undefined, 200, { ...s, queues: s.queues.filter((x) => (!tenant || x.tenant === tenant) && (!topic || x.topic === topic)) });
      }
      if (req.method === 'GET' && url.pathname === '/v1/spool/peek') {
        if (!tenant || !topic) return fail(res, undefined, 400, 'missing_queue', 'peek needs tenant and topic');
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 10) || 10, 1), 1000);
        const msgs = await ctx.spool.peek(tenant, topic, limit);
        return send(res, undefined, 200, { tenant, topic, messages: msgs.map((m) => ({ ...sinkRecord(m), bytes: m.body.length })) });
      }
      if (req.method === 'POST' && url.pathname === '/v1/spool/purge') {
        const removed = await ctx.spool.purge(tenant, topic);
        ctx.log.warn('spool purged by operator', { tenant: tenant ?? '*', topic: topic ?? '*', removed });
        return send(res, undefined, 200, { removed });
      }
      fail(res, undefined, 404, 'not_found', 'no such endpoint');
    })());
  };
}
