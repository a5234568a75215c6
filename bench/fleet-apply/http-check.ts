import http from 'node:http';
import type { FarmNode } from './farm.js';

/**
 * Asks every node's nginx, with each app's Host header, for /healthz: a server block answers
 * "ok <tenant>/<app>" only where the app is placed. Counts the app instances served, so the two
 * tools can be shown to have done the same job (same count), and checks the static site that
 * every node carries. Bounded: one request per node and app, 32 at a time, 5 s timeout each.
 */
function get(host: string, port: number, hostHeader: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, method: 'GET', headers: { Host: hostHeader }, timeout: 5000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

export interface ServeCheck {
  nodesServingSite: number;
  appInstances: number;
  nodesDown: string[];
}

export async function checkServing(nodes: FarmNode[], port: number, apps: { name: string; domain: string }[], site: { domain: string; expect: string }): Promise<ServeCheck> {
  const jobs: (() => Promise<void>)[] = [];
  let nodesServingSite = 0;
  let appInstances = 0;
  const nodesDown: string[] = [];
  for (const n of nodes) {
    jobs.push(async () => {
      const r = await get(n.address, port, site.domain, '/');
      if (r.status === 200 && r.body.includes(site.expect)) nodesServingSite++;
      else nodesDown.push(n.name);
    });
    for (const a of apps) {
      jobs.push(async () => {
        const r = await get(n.address, port, a.domain, '/healthz');
        if (r.status === 200 && r.body.trim().endsWith(`/${a.name}`)) appInstances++;
      });
    }
  }
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
  return { nodesServingSite, appInstances, nodesDown: nodesDown.sort() };
}
