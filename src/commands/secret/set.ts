import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { json } from '../../cli/output.js';

export default class SecretSet extends EdgectlCommand {
  static override summary = 'Encrypt a secret into the fleet (age, to the Fleet\'s spec.secrets.recipients)';
  static override description = `Reads the plaintext from stdin (or --from FILE, which must be outside the fleet repo) and writes FILE,
ASCII-armored age encrypted to every recipient in the Fleet's spec.secrets.recipients. FILE must end in .age
and lie inside the fleet. The plaintext is never written to disk and never printed. Commit FILE as usual.

Exit status: 0 written, 1 refused or failed (nothing written).`;
  static override examples = [
    '<%= config.bin %> secret set tls/acme/www.key.age < www.key',
    '<%= config.bin %> secret set --fleet fleet tls/acme/www.key.age --from /secure/www.key',
  ];
  static override args = { file: Args.string({ description: 'The secret file to write (*.age, inside the fleet)', required: true }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    from: Flags.string({ summary: 'Read the plaintext from this file (outside the fleet) instead of stdin' }),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SecretSet);
    const { setSecret } = await import('../../lib/secrets/set.js');
    const { readPlaintext } = await import('../../lib/secrets/read-plaintext.js');
    const plaintext = await readPlaintext(flags.from);
    try {
      const r = await setSecret({ fleet: flags.fleet, target: args.file, plaintext, from: flags.from });
      if (flags.json) this.out(json(r));
      else this.out(`encrypted ${r.file} to ${r.recipients} recipient(s) (${r.bytes} bytes, armored); commit it`);
    } finally {
      plaintext.fill(0);
    }
  }
}
