import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliSync } from '../helpers/cli.js';
import { REPO } from '../helpers/paths.js';

// Issue 12 item 11: oclif's help, not-found and autocomplete plugins; every exit status is one of
// the documented table (0, 1, 2 where a command says so): never oclif's own 2 or 127.
describe('edgectl help, a mistyped command, and exit statuses', { timeout: 120_000 }, () => {
  it('`edgectl help validate` shows validate\'s help (exit 0), as `validate --help` does', () => {
    const r = cliSync(['help', 'validate']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Check a fleet repo: every problem with file, line and field\n/);
    expect(r.stdout).toContain('$ edgectl validate');
    expect(r.stdout).toBe(cliSync(['validate', '--help']).stdout);
    expect(cliSync(['help', 'spool', 'status']).stdout).toContain('$ edgectl spool status');
  });

  it('a mistyped command gets the nearest one as a hint, a usage error and exit 1 (not 127)', () => {
    for (const [typed, guess] of [[['valdate', '--fleet', 'x'], 'edgectl validate'], [['spool', 'stats'], 'edgectl spool status'], [['help', 'valdate'], 'edgectl help validate']] as const) {
      const r = cliSync([...typed]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/is not an edgectl command \[EDGECTL_USAGE\]/);
      expect(r.stderr).toContain(`did you mean \`${guess}\`?`);
      expect(r.stdout).toBe('');
    }
    const far = cliSync(['xyzzy']);
    expect(far.code).toBe(1);
    expect(far.stderr).not.toMatch(/did you mean/);
    expect(far.stderr).toContain('`edgectl help` lists every command');
  });

  it('the plugins\' own usage errors exit 1 with a code, never 2 (which reads as "changes" to cron)', () => {
    for (const argv of [['autocomplete', 'fish'], ['help', '--bogus'], ['autocomplete', '--bogus']]) {
      const r = cliSync(argv);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/^error .* \[EDGECTL_USAGE\]\nhint: run `edgectl [a-z ]*--help`/m);
    }
    expect(cliSync(['plan', '--nope']).code).toBe(1);
  });

  it('autocomplete is there: it prints the setup for bash', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'edgectl-ac-'));
    const r = cliSync(['autocomplete', 'bash'], { env: { HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') } });
    await rm(home, { recursive: true, force: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/edgectl autocomplete/);
  });

  it('the README documents every exit status a command can end with', async () => {
    const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
    const section = readme.split('## Exit status')[1]?.split('\n## ')[0] ?? '';
    for (const code of ['0', '1', '2']) expect(section).toMatch(new RegExp(`\\| ${code} \\|`));
    expect(section).toMatch(/unknown command/);
  });
});
