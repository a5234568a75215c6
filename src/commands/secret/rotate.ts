import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { ageIdentityFlag } from '../../cli/fleet-flags.js';
import { json } from '../../cli/output.js';

export default class SecretRotate extends EdgectlCommand {
  static override summary = 'Re-encrypt the fleet\'s secrets to its current recipients (after adding or removing one)';
  static override description = `Decrypts every *.age file of the fleet (or the FILEs given) with your age identity and encrypts each
again, with a new file key, to the Fleet's spec.secrets.recipients as they are now. Nothing is written unless
every file decrypts. The plaintext stays in memory. A recipient removed from the list can still read what it
could read before: to shut it out, replace the secret itself (a new TLS key) with \`edgectl secret set\`.

Exit status: 0 re-encrypted, 1 refused or failed (nothing written).`;
  static override examples = ['<%= config.bin %> secret rotate --fleet fleet', '<%= config.bin %> secret rotate tls/acme/www.key.age --age-identity ~/keys.txt'];
  static override strict = false;
  static override args = { file: Args.string({ description: 'Secrets to re-encrypt (default: every *.age file)' }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    'age-identity': ageIdentityFlag(),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(SecretRotate);
    const { rotateSecrets } = await import('../../lib/secrets/rotate.js');
    const { secretOpener } = await import('../../lib/secrets/opener.js');
    const r = await rotateSecrets({ fleet: flags.fleet, files: argv as string[], secrets: secretOpener({ flag: flags['age-identity'], env: process.env }) });
    if (flags.json) this.out(json(r));
    else this.out(`re-encrypted ${r.files.length} secret(s) to ${r.recipients} recipient(s): ${r.files.join(', ')}; commit them`);
  }
}
