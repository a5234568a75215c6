import { cp, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { EXAMPLE } from '../helpers/paths.js';

export const TEST_VERSION = '0.0.0-test';

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `edgectl-render-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** fleet.example copied outside git: its bundles do not change with every commit of this repo. */
export async function copyExample(into: string): Promise<string> {
  const dir = path.join(into, 'fleet');
  await cp(EXAMPLE, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.edgectl`) });
  return dir;
}

export interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One HTTP request to a live nginx (no keep-alive), with the Host header given. */
export function httpRequest(to: { addr: string; port: number }, method: string, host: string, urlPath: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: to.addr, port: to.port, method, path: urlPath, agent: false, timeout: 10_000, headers: { host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
