import { errorMessage } from '../errors.js';
import type { Transport } from '../transport/types.js';
import type { NginxTarget } from './nginx.js';

export interface HealthTarget {
  /** `<tenant>.<app>` (see appId) */
  app: string;
  /** The Host header that selects the app's server block. */
  host: string;
  path: string;
  expectStatus: number;
  /** When set, the body must contain it (the default /healthz names its app: proof the right server answered). */
  expectBody?: string;
  /**
   * The app's own page (no healthCheck in the fleet): judged by who answered, not by one status.
   * An answer nginx produced itself fails (500, or for a static app 403/404: its root or index is
   * missing); an upstream that is down (502, 503, 504: php-cgi not running) is reported, and passes.
   */
  page?: 'static' | 'fastcgi';
}

/** How a page target's answer is judged: ok, a failure of this release, or a note (an upstream down). */
export function judgePage(h: HealthTarget, status: number): 'ok' | 'fail' | 'note' {
  if (status === 502 || status === 503 || status === 504) return 'note';
  if (status >= 500) return 'fail';
  if (h.page === 'static' && (status === 403 || status === 404)) return 'fail';
  return 'ok';
}

/** `<tenant>.<app>.conf`, or `<tenant>--<app>.conf` in releases rendered before edgectl joined names with ".". */
const APP_CONF = /^nginx\/conf\.d\/(([a-z0-9-]+)\.([a-z0-9-]+)|([a-z0-9-]+?)--([a-z0-9-]+))\.conf$/;

/**
 * Health targets from a release's own files: one per app fragment, its first server name
 * (a wildcard's "*" becomes "healthz"), GET /healthz. rollback and reset use this, so they need
 * nothing but the node; apply may pass richer targets computed from the fleet.
 */
export function targetsFromRelease(files: { path: string; data: Buffer }[]): HealthTarget[] {
  const out: HealthTarget[] = [];
  for (const f of files) {
    const m = APP_CONF.exec(f.path);
    if (!m) continue;
    const names = /^\s*server_name\s+([^;]+);/m.exec(f.data.toString())?.[1].trim().split(/\s+/) ?? [];
    const name = names.find((n) => /^(\*\.)?[a-z0-9.-]+$/.test(n));
    if (!name) continue;
    const [tenant, app] = m[2] !== undefined ? [m[2], m[3]] : [m[4], m[5]];
    out.push({ app: m[1], host: name.replace(/^\*\./, 'healthz.'), path: '/healthz', expectStatus: 200, expectBody: `${tenant}/${app}` });
  }
  return out;
}

export interface HealthFailure {
  app: string;
  host: string;
  why: string;
  /** Reported, not a failure: the app's upstream is down (502/503/504). */
  note?: boolean;
}

/** Every target through the transport (SSH: a direct-tcpip channel to the node's own nginx). */
export async function checkHealth(t: Transport, ng: NginxTarget, targets: HealthTarget[], opts: { attempts?: number; delayMs?: number } = {}): Promise<HealthFailure[]> {
  const attempts = opts.attempts ?? 4;
  const results = await Promise.all(targets.map(async (h) => {
    let why = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, (opts.delayMs ?? 250) * i));
      try {
        const res = await t.http({ host: ng.host, port: ng.port, method: 'GET', path: h.path, headers: { host: h.host }, timeoutMs: 5000 });
        const body = res.body.toString('utf8', 0, Math.min(res.body.length, 2000));
        if (h.page) {
          const v = judgePage(h, res.status);
          if (v === 'ok') return undefined;
          if (v === 'note') return { app: h.app, host: h.host, why: `GET ${h.path} (Host: ${h.host}) answered ${res.status}: its upstream is down`, note: true };
          why = `GET ${h.path} (Host: ${h.host}) answered ${res.status}, an answer of nginx's own`;
        } else if (res.status !== h.expectStatus) why = `GET ${h.path} (Host: ${h.host}) answered ${res.status}, expected ${h.expectStatus}`;
        else if (h.expectBody && !body.includes(h.expectBody)) why = `GET ${h.path} (Host: ${h.host}) was not answered by the app's server block (body: ${JSON.stringify(body.slice(0, 80))})`;
        else return undefined;
      } catch (e) {
        why = errorMessage(e);
      }
    }
    return { app: h.app, host: h.host, why };
  }));
  return results.filter((r): r is HealthFailure => r !== undefined);
}
