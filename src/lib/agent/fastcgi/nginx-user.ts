import { readFile } from 'node:fs/promises';

/**
 * Who nginx's workers run as, so that the FastCGI socket can be theirs to connect to and no one
 * else's. A master started by root runs its workers as the `user` directive says, else as
 * nginx's built-in default: user nobody, group nogroup where the system has no group "nobody"
 * (Debian). A master not started by root runs its workers as itself: then the agent's own user.
 */
export interface WorkerIdentity {
  uid: number;
  gid: number;
  user: string;
  group: string;
}

const USER_DIRECTIVE = /^\s*user\s+([A-Za-z0-9._-]+)(?:\s+([A-Za-z0-9._-]+))?\s*;/m;

export function workerNames(nginxConf: string | undefined, groups: ReadonlySet<string>): { user: string; group: string } {
  const m = nginxConf ? USER_DIRECTIVE.exec(nginxConf) : null;
  if (m) return { user: m[1], group: m[2] ?? m[1] };
  return { user: 'nobody', group: groups.has('nobody') ? 'nobody' : 'nogroup' };
}

function table(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && f[0]) out.set(f[0], f);
  }
  return out;
}

/** Undefined when the agent is not root (the workers are then the agent's own user). */
export async function nginxWorkerIdentity(nginxConfPath: string): Promise<WorkerIdentity | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const conf = await readFile(nginxConfPath, 'utf8').catch(() => undefined);
  const passwd = table(await readFile('/etc/passwd', 'utf8').catch(() => ''));
  const groups = table(await readFile('/etc/group', 'utf8').catch(() => ''));
  const { user, group } = workerNames(conf, new Set(groups.keys()));
  const uid = Number(passwd.get(user)?.[2] ?? NaN);
  const gid = Number(groups.get(group)?.[2] ?? passwd.get(user)?.[3] ?? NaN);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { uid, gid, user, group };
}
