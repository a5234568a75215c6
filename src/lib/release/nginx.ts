import { unbracket } from '../fleet/ip.js';
import type { ResolvedNode } from '../fleet/model.js';
import type { Transport } from '../transport/types.js';
import { layout } from './layout.js';
import { LIVE_NGINX_FN, NGINX_WORKERS_FN, NodeStepError, runScript } from './remote.js';

/** How to reach and drive the node's own nginx. */
export interface NginxTarget {
  binary: string;
  /** Where nginx listens, as seen from the node. */
  host: string;
  port: number;
}

/** Where the node's nginx is reached from the node itself: a wildcard listen is reached on loopback. */
export function nginxTargetOf(n: Pick<ResolvedNode, 'http' | 'nginx'>): NginxTarget {
  const a = n.http.address;
  const h = a === undefined ? undefined : unbracket(a);
  const host = !h || h === '0.0.0.0' || h === '*' ? '127.0.0.1' : h === '::' ? '::1' : h;
  return { binary: n.nginx.binary, host, port: n.http.port };
}

/** Validates a staged release in place: the whole include tree, with the node's root as prefix. */
export async function nginxTest(t: Transport, root: string, releaseDir: string, ng: NginxTarget): Promise<void> {
  const l = layout(root);
  const r = await t.exec([ng.binary, '-t', '-q', '-p', `${l.root}/`, '-c', l.confOf(releaseDir)], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new NodeStepError(`nginx -t rejected the release (exit ${r.code})`, (r.stderr || r.stdout).trim());
}

/**
 * Reloads nginx from `current`, or starts it when it is not running. The pid file is trusted
 * only if it names a live nginx process (a pid reused after a reboot must not get a HUP).
 * Prints "errlog <size>" first: what the error log held before, so its new lines can be shown,
 * and on a reload "workers <pids>": the old workers, which take connections until they quit.
 */
const RELOAD_SCRIPT = `
b="$1"; r="$2"
${LIVE_NGINX_FN}${NGINX_WORKERS_FN}printf 'errlog %s\\n' "$(stat -c %s "$r/log/error.log" 2>/dev/null || echo 0)"
if live_nginx "$r/run/nginx.pid" >/dev/null; then
  nginx_workers "$_lnp"; printf 'workers %s\\n' "$nw"
  "$b" -p "$r/" -c "$r/current/nginx/nginx.conf" -s reload && echo reloaded
else
  mkdir -p "$r/log" "$r/run" "$r/cache" "$r/tmp"
  # The local demo's stand-in socket (nodes/local-mode.ts): a killed nginx leaves it, and nginx
  # does not unlink a stale unix socket before binding it. No nginx runs here, so it is stale.
  rm -f "$r/run/demo-upstream.sock"
  "$b" -p "$r/" -c "$r/current/nginx/nginx.conf" </dev/null && echo started
fi
`;

export interface ReloadResult {
  action: 'reloaded' | 'started';
  errorLogOffset: number;
  /** The workers that took connections before a reload (none after a start). */
  oldWorkers: number[];
}

export async function nginxReloadOrStart(t: Transport, root: string, ng: NginxTarget): Promise<ReloadResult> {
  const l = layout(root);
  const r = await runScript(t, RELOAD_SCRIPT, [ng.binary, l.root], { timeoutMs: 60_000 });
  const offset = Number(/^errlog (\d+)/m.exec(r.stdout)?.[1] ?? 0);
  const action = /^(reloaded|started)$/m.exec(r.stdout)?.[1] as ReloadResult['action'] | undefined;
  if (r.code !== 0 || !action) throw new NodeStepError(`nginx reload/start failed (exit ${r.code})`, (r.stderr || r.stdout.replace(/^(errlog|workers) .*\n/gm, '')).trim());
  const oldWorkers = (/^workers (.*)$/m.exec(r.stdout)?.[1] ?? '').split(' ').filter((p) => /^\d+$/.test(p)).map(Number);
  return { action, errorLogOffset: offset, oldWorkers };
}

const STOP_SCRIPT = `
b="$1"; r="$2"
${LIVE_NGINX_FN}if pid=$(live_nginx "$r/run/nginx.pid"); then
  kill -QUIT "$pid"
  i=0; while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
fi
exit 0
`;

/** Stops the node's nginx gracefully (used when a first release fails: the node had none). */
export async function nginxStop(t: Transport, root: string, ng: NginxTarget): Promise<void> {
  await runScript(t, STOP_SCRIPT, [ng.binary, layout(root).root], { timeoutMs: 30_000 });
}

/** New lines of the node's error log since `offset` (at most 4 KiB): nginx's own words. */
export async function errorLogSince(t: Transport, root: string, offset: number): Promise<string> {
  const r = await runScript(t, 'tail -c +$(($2 + 1)) "$1" 2>/dev/null | tail -c 4096', [layout(root).errorLog, String(offset)], { timeoutMs: 15_000 }).catch(() => undefined);
  return r?.stdout.trim() ?? '';
}

export async function liveConfigId(t: Transport, ng: NginxTarget): Promise<string | undefined> {
  try {
    const res = await t.http({ host: ng.host, port: ng.port, method: 'GET', path: '/.edgectl/config', headers: { host: 'edgectl.invalid' }, timeoutMs: 3000 });
    return res.status === 200 ? res.body.toString().trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `nginx -s reload` exits 0 even when nginx rejects the new config (it keeps the old one).
 * So: ask the running nginx which config it serves until it is the expected one, bounded. That
 * answer comes from a new worker; with the reload's `oldWorkers`, it then waits (up to 5 s) until
 * those have stopped taking connections, so that no new client meets the old config afterwards.
 * `lingering`: an old worker that still took connections at the end of that wait.
 */
export async function waitForConfig(t: Transport, ng: NginxTarget, configId: string, opts: { timeoutMs?: number; oldWorkers?: number[] } = {}): Promise<{ ok: boolean; seen?: string; lingering?: number }> {
  const deadline = Date.now() + (opts.timeoutMs ?? 8000);
  const oldWorkers = opts.oldWorkers ?? [];
  let seen: string | undefined;
  for (let i = 0; i < 200; i++) {
    seen = await liveConfigId(t, ng);
    if (seen === configId) {
      if (oldWorkers.length === 0) return { ok: true, seen };
      const w = await runScript(t, `${NGINX_WORKERS_FN}workers_quit 100 "$@" || { echo "$_wqp"; exit 1; }`, oldWorkers.map(String), { timeoutMs: 15_000 });
      const lingering = w.code === 0 ? undefined : Number(/^(\d+)$/m.exec(w.stdout)?.[1] ?? oldWorkers[0]);
      return { ok: true, seen, lingering };
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** Math.min(i, 4), 400)));
  }
  return { ok: false, seen };
}
