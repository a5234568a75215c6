import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSync } from '../helpers/cli.js';
import { REPO } from '../helpers/paths.js';

/** Every built command file under dist/commands, as oclif names it (dir/file -> dir:file, index -> dir). */
async function builtCommands(dir = path.join(REPO, 'dist', 'commands'), prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await builtCommands(path.join(dir, e.name), `${prefix}${e.name}:`)));
    else if (e.name.endsWith('.js')) out.push(e.name === 'index.js' ? prefix.slice(0, -1) : `${prefix}${e.name.slice(0, -3)}`);
  }
  return out;
}

// `npm run build` writes oclif.manifest.json (scripts/oclif-manifest.mjs) so that oclif imports only
// the command being run. oclif trusts it: a command missing from it is "not an edgectl command".
describe('oclif.manifest.json', () => {
  it('lists exactly the built commands, with the flags each command class declares', async () => {
    const manifest = JSON.parse(await readFile(path.join(REPO, 'oclif.manifest.json'), 'utf8')) as { version: string; commands: Record<string, { flags: Record<string, unknown> }> };
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(manifest.version).toBe(pkg.version);
    expect(Object.keys(manifest.commands).sort()).toEqual((await builtCommands()).sort());
    const { default: Apply } = await import(path.join(REPO, 'dist', 'commands', 'apply.js'));
    expect(Object.keys(manifest.commands.apply.flags).sort()).toEqual(Object.keys(Apply.flags).sort());
    // And the CLI finds a command through it.
    const r = cliSync(['apply', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('$ edgectl apply');
  });
});
