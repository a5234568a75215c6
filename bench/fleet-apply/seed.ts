import { execFile } from 'node:child_process';
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FarmNode } from './farm.js';

const run = promisify(execFile);

/**
 * Puts every node in the state a completed first Ansible run leaves behind (staged tree,
 * promoted `current/`, runtime dirs, nginx running), without Ansible. Used only when the first
 * run hit its time limit, so that the no-change run can still be measured on its own. The
 * no-change run then checks the seeding: any difference would show up as "changed" tasks.
 */
export async function seedAnsibleState(nodes: FarmNode[], roots: Map<string, string>, bundles: string): Promise<void> {
  for (const n of nodes) {
    const root = roots.get(n.name)!;
    const bundle = path.join(bundles, n.name);
    await rm(root, { recursive: true, force: true });
    for (const d of ['log', 'run', 'cache', 'tmp']) await mkdir(path.join(root, d), { recursive: true });
    const stage = path.join(root, 'stage');
    for (const part of ['nginx', 'agent', 'apps']) await cp(path.join(bundle, part), path.join(stage, part), { recursive: true });
    await run('chmod', ['-R', 'u=rwX,go=rX', stage]);
    await cp(stage, path.join(root, 'current'), { recursive: true });
    await run('nginx', ['-p', `${root}/`, '-c', `${root}/current/nginx/nginx.conf`]);
  }
}
