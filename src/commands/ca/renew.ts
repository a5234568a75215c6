import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { ageIdentityFlag } from '../../cli/fleet-flags.js';
import { json } from '../../cli/output.js';

export default class CaRenew extends EdgectlCommand {
  static override summary = 'Issue every relay\'s and core node\'s hop certificate that is missing, misnamed or due (30 days or fewer left)';
  static override description = `For each relay and core node of the fleet: a new certificate (as \`ca issue\`) for the host its senders
dial (a relay's http.address, else its address; a core node: the host of spec.hub.url) when its own is
missing, does not name that host, or has 30 days or fewer left (renewed with the names it has). Run it from cron
or CI, commit what it wrote, and apply: the agents pick up the new files without a restart. (apply itself renews
what is due, for the same key, when it can decrypt the fleet CA's key: docs/tls.md, Renewal on apply.)

Exit status: 0 done (issued or nothing due), 1 failed (certificates issued before the failure stay written).`;
  static override examples = ['<%= config.bin %> ca renew --fleet fleet && git -C fleet add tls/hops'];
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    'age-identity': ageIdentityFlag(),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CaRenew);
    const { renewHopCerts } = await import('../../lib/tls-hop/renew.js');
    const { secretOpener } = await import('../../lib/secrets/opener.js');
    const r = await renewHopCerts({ fleet: flags.fleet, secrets: secretOpener({ flag: flags['age-identity'], env: process.env }) });
    if (flags.json) return void this.out(json({ certificates: r }));
    for (const c of r) this.out(c.issued ? `${c.node}: issued ${c.cert} for ${c.names.join(', ')} (until ${c.notAfter})` : `${c.node}: kept, ${c.daysLeft} days left`);
    if (r.some((c) => c.issued)) this.out('commit tls/hops/ and apply');
  }
}
