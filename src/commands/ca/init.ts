import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { json } from '../../cli/output.js';

export default class CaInit extends EdgectlCommand {
  static override summary = 'Create the fleet CA that signs the uplink hops\' certificates';
  static override description = `Makes an ECDSA P-256 CA (10 years) and writes its certificate to tls/fleet-ca.pem and its key to
tls/fleet-ca.key.age, encrypted with age to the Fleet's spec.secrets.recipients. The key is never written in
plaintext and never printed. Refuses to replace an existing CA. Commit both files.

Exit status: 0 created, 1 refused or failed (nothing written).`;
  static override examples = ['<%= config.bin %> ca init --fleet fleet'];
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    name: Flags.string({ summary: 'The CA\'s common name (default: edgectl fleet CA <fleet directory>)' }),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CaInit);
    const { initFleetCa } = await import('../../lib/tls-hop/fleet-ca.js');
    const r = await initFleetCa({ fleet: flags.fleet, name: flags.name });
    if (flags.json) this.out(json(r));
    else this.out(`fleet CA written: ${r.cert} (sha256 ${r.sha256}, until ${r.notAfter}) and ${r.key} (encrypted to ${r.recipients} recipient(s)); commit them`);
  }
}
