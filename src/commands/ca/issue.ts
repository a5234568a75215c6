import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { ageIdentityFlag } from '../../cli/fleet-flags.js';
import { json } from '../../cli/output.js';

export default class CaIssue extends EdgectlCommand {
  static override summary = 'Issue (or renew) a hop\'s server certificate for its forward listener, signed by the fleet CA';
  static override description = `Decrypts the fleet CA's key with your age identity (in memory), makes a new P-256 key for NODE and a
certificate (1 year) for every --name (the host names or IP addresses its senders use in their upstream URL;
default: the host the fleet gives them, a relay's http.address or address, a core node's spec.hub.url host),
and writes tls/hops/NODE.pem and tls/hops/NODE.key.age (encrypted to the Fleet's recipients). With --if-due an
existing certificate naming every --name with more than 30 days left is kept and nothing is written (for cron);
one that is only due is renewed with the names it has.
With --csr FILE the key is the node's own (a PKCS#10 request made on the node: docs/tls.md): only the
certificate is written, and renewals re-sign the same key.

Exit status: 0 issued or kept, 1 refused or failed (nothing written).`;
  static override examples = ['<%= config.bin %> ca issue bj-relay-01 --name relay1.example --name 198.51.100.7', '<%= config.bin %> ca issue bj-relay-01 --name relay1.example --if-due'];
  static override args = { node: Args.string({ description: 'The relay or hub the certificate is for', required: true }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    name: Flags.string({ summary: 'A DNS name or IP address for the certificate (repeatable; default: from the fleet)', multiple: true }),
    csr: Flags.string({ summary: 'Sign the key of this certificate request (made on the node, whose key never leaves it) instead of making a key', helpValue: 'FILE' }),
    'if-due': Flags.boolean({ summary: 'Keep a certificate that names all of them with more than 30 days left' }),
    'age-identity': ageIdentityFlag(),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(CaIssue);
    const { issueHopCert } = await import('../../lib/tls-hop/fleet-ca.js');
    const { secretOpener } = await import('../../lib/secrets/opener.js');
    const names = flags.name ?? (await import('../../lib/tls-hop/renew.js').then((m) => m.fleetHopNames(flags.fleet))).get(args.node);
    if (!names) {
      const { EdgectlError } = await import('../../lib/errors.js');
      throw new EdgectlError('EDGECTL_USAGE', `${args.node} is no relay or core node of the fleet`, { hint: 'Give --name HOST for each name its certificate must carry.' });
    }
    const csr = flags.csr === undefined ? undefined : await import('node:fs/promises').then((f) => f.readFile(flags.csr!, 'utf8'));
    const r = await issueHopCert({ fleet: flags.fleet, node: args.node, names, csr, ifDue: flags['if-due'], secrets: secretOpener({ flag: flags['age-identity'], env: process.env }) });
    if (flags.json) this.out(json(r));
    else if (!r.issued) this.out(`${r.cert} kept: ${r.daysLeft} days left (until ${r.notAfter})`);
    else this.out(`issued ${r.cert} for ${r.names.join(', ')} (until ${r.notAfter})${r.key ? ` and ${r.key}` : ' (its key is the node\'s own)'}; commit it`);
  }
}
