import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * How the operator runs this very edgectl again, for "next steps" lines: `edgectl` when that name
 * on PATH is this installation (npm link, a global install), `npx edgectl` when it is the project's
 * node_modules/.bin one, else `node <the absolute path of bin/run.js>` (a checkout), which always works.
 */
export function selfCommand(argv1 = process.argv[1], envPath = process.env.PATH ?? ''): string {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const me = argv1 ? real(argv1) : undefined;
  if (!me) return 'edgectl';
  for (const dir of envPath.split(path.delimiter).filter(Boolean)) {
    const cand = path.join(dir, 'edgectl');
    if (isFile(cand) && real(cand) === me) return 'edgectl';
  }
  const npxBin = path.join(process.cwd(), 'node_modules', '.bin', 'edgectl');
  if (isFile(npxBin) && real(npxBin) === me) return 'npx edgectl';
  return `node ${/^[\w./@+-]+$/.test(me) ? me : `'${me.replaceAll("'", "'\\''")}'`}`;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
