import path from 'node:path';
import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json } from '../cli/output.js';

export default class Validate extends EdgectlCommand {
  static override summary = 'Check a fleet repo: every problem with file, line and field';
  static override description = `Reads every YAML document of the fleet (working tree, or --rev from git without a checkout) and reports
syntax errors, schema errors, unknown fields, bad references and unsafe values.

Exit status: 0 valid, 1 invalid (or warnings with --strict), 1 on any other error
(no such directory, bad revision). With GITHUB_ACTIONS=true the format defaults to github
(workflow annotations). See docs/fleet-format.md for every rule.`;
  static override examples = ['<%= config.bin %> validate --fleet fleet.example', '<%= config.bin %> validate --rev HEAD~1 --json', '<%= config.bin %> validate --format github --strict'];
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    rev: Flags.string({ summary: 'Validate the fleet as of this git revision (no checkout needed)' }),
    json: Flags.boolean({ summary: 'Same as --format json' }),
    format: Flags.string({ summary: 'Output format', options: ['text', 'json', 'github'] }),
    strict: Flags.boolean({ summary: 'Treat warnings as errors' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Validate);
    const { readFleetSource } = await import('../lib/fleet/source.js');
    const { validateFleet } = await import('../lib/fleet/validate.js');
    const report = await import('../lib/output/validate-report.js');
    const result = validateFleet(await readFleetSource(flags.fleet, flags.rev));
    const format = flags.json ? 'json' : (flags.format ?? (process.env.GITHUB_ACTIONS === 'true' ? 'github' : 'text'));
    const strict = flags.strict === true;
    // Paths as the operator can open them: relative to the cwd, absolute when the fleet is elsewhere.
    const rel = path.relative(process.cwd(), result.root);
    const opts = { strict, prefix: rel.startsWith('..') ? result.root : rel || '.' };
    if (format === 'json') this.out(json(report.validateJson(result, strict)));
    else if (format === 'github') this.out(report.validateGithub(result, opts));
    else this.out(report.validateText(result, colorsFor(process.stdout), opts));
    this.setExit(report.isValid(result, strict) ? 0 : 1);
  }
}
