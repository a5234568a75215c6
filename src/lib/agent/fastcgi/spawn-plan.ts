import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastcgiApp } from '../../bundle/agent-json.js';
import { fastcgiCommandProblems, isAppRelativeProgram } from '../../fleet/fastcgi-command.js';

export interface SpawnPlan {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/**
 * PATH for the app: the agent's absolute entries only. An empty or relative entry would make a
 * bare program name resolve inside the app's own directory (its cwd), which is tenant content.
 */
export function appPath(path = process.env.PATH ?? ''): string {
  const dirs = path.split(':').filter((d) => d.startsWith('/'));
  return dirs.length ? dirs.join(':') : '/usr/local/bin:/usr/bin:/bin';
}

/**
 * How to start one process of the app, worked out at each start (a release switch moves
 * `current`): cwd is the app's directory in the release `current` points to now (or the release
 * itself when the app ships no files); a program given as a path must resolve, links followed,
 * to a file inside that directory. The command is checked again: agent.json is input too.
 */
export async function spawnPlan(entry: FastcgiApp): Promise<SpawnPlan> {
  const argv = entry.command;
  if (!argv) throw new Error('no command');
  const bad = fastcgiCommandProblems(argv)[0];
  if (bad) throw new Error(`command[${bad.index}] ${bad.message}`);
  const cwd = await realpath(entry.root).catch(() => realpath(dirname(dirname(entry.root))));
  let file = argv[0];
  if (isAppRelativeProgram(file)) {
    const abs = await realpath(`${cwd}/${file}`).catch(() => undefined);
    if (!abs) throw new Error(`program ${file} not found in ${cwd}`);
    if (!abs.startsWith(`${cwd}/`)) throw new Error(`program ${file} resolves outside the app's directory (${abs})`);
    file = abs;
  }
  return { file, args: argv.slice(1), cwd, env: { PATH: appPath() } };
}
