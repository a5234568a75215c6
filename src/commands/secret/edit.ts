import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { ageIdentityFlag } from '../../cli/fleet-flags.js';

export default class SecretEdit extends EdgectlCommand {
  static override summary = 'Edit a secret of the fleet in $VISUAL / $EDITOR, re-encrypted to the Fleet\'s recipients';
  static override description = `Decrypts FILE (*.age) with your age identity into a private 0700 directory ($XDG_RUNTIME_DIR/edgectl,
else ~/.cache/edgectl; never /tmp), runs $VISUAL or $EDITOR (default vi) on it, then encrypts what you saved to the
Fleet's spec.secrets.recipients. The plaintext file is overwritten with zeros and removed whatever happens; an
unchanged or empty result changes nothing.

Exit status: 0 saved or unchanged, 1 refused or failed.`;
  static override examples = ['<%= config.bin %> secret edit tls/acme/www.key.age'];
  static override args = { file: Args.string({ description: 'The secret to edit (*.age, inside the fleet)', required: true }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    'age-identity': ageIdentityFlag(),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SecretEdit);
    const { editSecret } = await import('../../lib/secrets/edit.js');
    const { secretOpener } = await import('../../lib/secrets/opener.js');
    const r = await editSecret({ fleet: flags.fleet, file: args.file, env: process.env, secrets: secretOpener({ flag: flags['age-identity'], env: process.env }) });
    this.out(r.changed ? `re-encrypted ${r.file}; commit it` : `${r.file} unchanged`);
  }
}
