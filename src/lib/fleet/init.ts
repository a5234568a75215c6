import { cp, lstat, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { EdgectlError, errorMessage } from '../errors.js';
import { runGit } from './git.js';

/** fleet.example ships in the package (package.json "files"): found from this module, never from the cwd. */
export const EXAMPLE_DIR = fileURLToPath(new URL('../../../fleet.example', import.meta.url));

export interface InitResult {
  dir: string;
  commit: string;
  files: string[];
  /** True when git had no author configured and edgectl's fallback identity signed the commit. */
  fallbackAuthor: boolean;
}

const FALLBACK_AUTHOR = ['user.name=edgectl init', 'user.email=edgectl@localhost'];

/** What edgectl writes inside a fleet (render's default output, --local nodes): never committed, so a render leaves the tree clean. */
export const INIT_GITIGNORE = `# written by edgectl: render output (.edgectl/render), --local nodes, saved plans
.edgectl/
*.plan.json
`;

/** The new fleet's README: the example's speaks of fleet.example; this one of the fleet it is. */
export const INIT_README = `# Fleet

An edgectl fleet repo: nodes/ (the machines), tenants/, apps/ (what runs on the edge nodes) and
fleet.yaml. Started from edgectl's example fleet by \`edgectl init\`; edit it for your own fleet.

From this directory (\`edgectl\` is \`npx edgectl\` where edgectl is a dependency of the
project, or \`node PATH/TO/edgectl/bin/run.js\` from a checkout of edgectl):

    edgectl validate     # every problem with file, line and field
    edgectl placement    # which edge nodes run each app
    edgectl render       # each node's bundle, in .edgectl/render (ignored by git)
    edgectl plan         # what apply would change on each node

Every field, its type, default and validation rule is described in edgectl's
\`docs/fleet-format.md\`.
`;

/**
 * Creates a new fleet repo in `dir` from the example fleet: copies the files, runs `git init`
 * and makes a first commit. Refuses a directory that exists and is not empty.
 */
export async function initFleet(dir: string, example = EXAMPLE_DIR): Promise<InitResult> {
  const abs = path.resolve(dir);
  const st = await stat(abs).catch(() => undefined);
  if (st && !st.isDirectory()) throw new EdgectlError('EDGECTL_DIR_NOT_EMPTY', `${dir} exists and is not a directory`);
  if (st && (await readdir(abs)).length > 0) throw new EdgectlError('EDGECTL_DIR_NOT_EMPTY', `${dir} is not empty`);
  if (!(await stat(example).catch(() => undefined))?.isDirectory()) {
    throw new EdgectlError('EDGECTL_INTERNAL', `the example fleet is missing from the installation (${example})`);
  }
  await mkdir(abs, { recursive: true });
  // Copy regular files and directories only: a symlink in the package must not leak out of it.
  await cp(example, abs, { recursive: true, errorOnExist: true, force: false, filter: async (src) => !(await lstat(src)).isSymbolicLink() });
  await writeFile(path.join(abs, 'README.md'), INIT_README);
  await writeFile(path.join(abs, '.gitignore'), INIT_GITIGNORE, { flag: 'wx' });
  const files = await listFiles(abs);

  try {
    // The one git client of the project (fleet/git.ts), as validate --rev uses it.
    await runGit(abs, ['init', '--quiet', '--initial-branch=main']);
    const config = async (key: string) => (await runGit(abs, ['config', key]).catch(() => Buffer.alloc(0))).toString().trim();
    const fallbackAuthor = !(await config('user.name')) || !(await config('user.email'));
    const author = fallbackAuthor ? FALLBACK_AUTHOR.flatMap((c) => ['-c', c]) : [];
    await runGit(abs, [...author, 'add', '--all', '--', '.']);
    await runGit(abs, [...author, 'commit', '--quiet', '--no-verify', '--no-gpg-sign', '-m', 'Start the fleet from the edgectl example']);
    const commit = (await runGit(abs, ['rev-parse', 'HEAD'])).toString().trim();
    if (!/^[0-9a-f]{40,64}$/.test(commit)) throw new Error('git made no commit');
    return { dir: abs, commit, files, fallbackAuthor };
  } catch (e) {
    throw new EdgectlError('EDGECTL_GIT', `the fleet files are in ${dir}, but git failed: ${errorMessage(e).split('\n')[0]}`, { hint: 'Check that git is installed (`git --version`), then run `git init && git add -A && git commit` there yourself.', cause: e });
  }
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, r)));
    else out.push(r);
  }
  return out.sort();
}
