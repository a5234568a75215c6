import { chmod, chown, mkdir } from 'node:fs/promises';
import { renameSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import type { WorkerIdentity } from './nginx-user.js';

/**
 * The listening socket of one FastCGI app. The agent must not accept on it: a libuv listener
 * would take connections off the queue that only the app's processes can answer. So the socket
 * is bound and listened under a temporary name nobody connects to, handed to the keeper (which
 * holds it as its fd 0 and never reads it), then renamed over the path nginx uses (replacing a
 * stale socket in one step) and closed here in the same synchronous run, so this process never
 * gets to poll it. libuv unlinks the bound name on close: by then that name no longer exists.
 */
export interface BoundSocket {
  /** The listening descriptor, valid until publish(). */
  fd: number;
  /** Puts the socket at its path and closes this process's descriptor. Call once the keeper holds it. */
  publish(): void;
  /** Gives up without publishing (the keeper could not start). */
  abandon(): void;
}

let seq = 0;

export async function bindSocket(path: string, workers: WorkerIdentity | undefined): Promise<BoundSocket> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  // The directory only needs to be passable; the socket's own mode decides who may connect.
  await chmod(dir, 0o755);
  const tmp = `${dir}/.${process.pid}-${++seq}.tmp`;
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: tmp, backlog: 511 }, () => { server.off('error', reject); resolve(); });
  });
  try {
    // Connecting needs write permission on the socket: nginx's workers (their group) and us.
    if (workers) await chown(tmp, 0, workers.gid);
    await chmod(tmp, workers ? 0o660 : 0o600);
  } catch (err) {
    server.close();
    throw err;
  }
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    server.close();
    throw new Error('cannot get the listening socket\'s descriptor (Linux only)');
  }
  let done = false;
  return {
    fd,
    publish() {
      if (done) return;
      done = true;
      try {
        renameSync(tmp, path);
      } finally {
        server.close();
      }
    },
    abandon() {
      if (done) return;
      done = true;
      server.close();
    },
  };
}
