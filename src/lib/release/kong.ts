import { errorMessage } from '../errors.js';
import type { Transport } from '../transport/types.js';
import { NodeStepError } from './remote.js';

/** Kong's admin API: loopback only (field notes: exposed admin APIs get owned); reached through the transport. */
export const KONG_ADMIN = { host: '127.0.0.1', port: 8001 };
const EMPTY_HASH = '00000000000000000000000000000000';

export interface KongStep {
  /** "skipped: ..." when Kong is not installed on the node; said, not hidden. */
  outcome: 'applied' | 'unchanged' | 'skipped';
  note?: string;
}

export async function kongInstalled(t: Transport): Promise<boolean> {
  const r = await t.exec(['sh', '-c', 'command -v kong >/dev/null 2>&1'], { timeoutMs: 15_000 });
  return r.code === 0;
}

/** `kong config parse` on the staged file, where Kong is installed. */
export async function kongValidate(t: Transport, file: string): Promise<KongStep> {
  if (!(await kongInstalled(t))) return { outcome: 'skipped', note: 'Kong is not installed on the node (no `kong` binary): kong.yml not validated' };
  const r = await t.exec(['kong', 'config', 'parse', file], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new NodeStepError(`kong config parse rejected kong/kong.yml (exit ${r.code})`, (r.stderr || r.stdout).trim());
  return { outcome: 'applied' };
}

/**
 * DB-less Kong: POST /config?check_hash=1 with the whole document (applied or rejected whole),
 * then read /status to check that the running config's hash moved to a non-empty one.
 */
export async function kongApply(t: Transport, yml: Buffer, admin: { host: string; port: number } = KONG_ADMIN): Promise<KongStep> {
  let before: string | undefined;
  try {
    before = await configHash(t, admin);
  } catch (e) {
    if (!(await kongInstalled(t))) return { outcome: 'skipped', note: 'Kong is not installed on the node: kong.yml shipped in the release but not loaded' };
    throw new NodeStepError('Kong admin API unreachable on the node', errorMessage(e));
  }
  const res = await t.http({ ...admin, method: 'POST', path: '/config?check_hash=1', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ config: yml.toString() }), timeoutMs: 30_000 });
  if (res.status === 304) return { outcome: 'unchanged' };
  if (res.status !== 201 && res.status !== 200) throw new NodeStepError(`Kong rejected kong.yml (HTTP ${res.status})`, res.body.toString().slice(0, 4000));
  const after = await configHash(t, admin);
  if (!after || after === EMPTY_HASH || after === before) throw new NodeStepError('Kong accepted kong.yml but its running configuration hash did not change', `before ${before}, after ${after}`);
  return { outcome: 'applied' };
}

async function configHash(t: Transport, admin: { host: string; port: number }): Promise<string | undefined> {
  const res = await t.http({ ...admin, method: 'GET', path: '/status', timeoutMs: 5000 });
  if (res.status !== 200) throw new Error(`GET /status answered ${res.status}`);
  return (JSON.parse(res.body.toString()) as { configuration_hash?: string }).configuration_hash;
}
