import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json } from '../cli/output.js';

export default class Init extends EdgectlCommand {
  static override summary = 'Create a new fleet repo from the example fleet';
  static override description = `Copies the example fleet (a core node, two relays, seven edge nodes, three tenants and an
app of every type) into DIR with a README and a .gitignore (.edgectl/: render output, --local nodes), runs git
init and makes a first commit. DIR must not exist or be
empty; nothing is ever overwritten.

Exit status: 0 created, 1 on any error (DIR not empty, git failed).`;
  static override examples = ['<%= config.bin %> init my-fleet', '<%= config.bin %> init . --json'];
  static override args = { dir: Args.string({ description: 'Directory to create (default: the current directory)', default: '.' }) };
  static override flags = { json: Flags.boolean({ summary: 'Print the result as JSON' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Init);
    const { initFleet } = await import('../lib/fleet/init.js');
    const { selfCommand } = await import('../cli/self.js');
    const r = await initFleet(args.dir);
    if (flags.json) return this.out(json({ dir: r.dir, commit: r.commit, files: r.files, fallbackAuthor: r.fallbackAuthor }));
    const c = colorsFor(process.stdout);
    const cd = args.dir === '.' ? '' : `  cd ${args.dir}\n`;
    const e = selfCommand();
    const pad = (s: string) => s.padEnd(e.length + 17);
    this.out(`${c.green('✓')} created a fleet repo in ${r.dir} (${r.files.length} files, commit ${r.commit.slice(0, 12)})
${r.fallbackAuthor ? c.dim('  (git has no user.name/user.email configured: the first commit is signed "edgectl init")\n') : ''}
Next steps:
${cd}  ${pad(`${e} validate`)}# check the fleet: every problem with file, line and field
  ${pad(`${e} placement`)}# which edge nodes each app runs on
  ${pad(`${e} render`)}# the nginx and Kong config each node would get (into .edgectl/, which git ignores)
Then edit nodes/, tenants/ and apps/ for your own fleet (docs/fleet-format.md lists every field),
validate again, and commit.`);
  }
}
