import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../../cli/base.js';
import { ageIdentityFlag } from '../../cli/fleet-flags.js';
import { stderrLogger } from '../../cli/logger.js';
import { json } from '../../cli/output.js';

export default class CertsRenew extends EdgectlCommand {
  static override summary = 'Issue ACME certificates that are missing or expire soon (DNS-01, on this machine)';
  static override description = `For every app with spec.tls.acme whose certificate is missing, expires within --days (default: the
Fleet's spec.acme.renewDays, else 30), does not cover the app's domains or does not go with its key, orders a
certificate from the Fleet's spec.acme.directory, answering DNS-01 through spec.acme.dns01.hook (run without a
shell). Writes the chain at tls.certificate and a new key, age-encrypted to spec.secrets.recipients, at tls.key
(the plaintext key is never written to disk or printed). The ACME account key (spec.acme.accountKey) is created
on first use, encrypted the same way. Review and commit what it wrote, then apply. Without --yes it only lists
what is due.

Exit status: 0 nothing due, 2 certificates renewed (files written: commit, then apply) or, without --yes,
due, 1 error (a failed issuance; the others renewed in the same run are still written and listed).`;
  static override examples = [
    '<%= config.bin %> certs renew --fleet fleet',
    '<%= config.bin %> certs renew --fleet fleet --yes --json   # from cron: exit 2 means commit and apply',
  ];
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    days: Flags.integer({ summary: 'Renew certificates that expire within this many days (default: spec.acme.renewDays, else 30)', min: 0, max: 3650 }),
    yes: Flags.boolean({ char: 'y', summary: 'Issue (without it: list what is due, issue nothing)' }),
    'age-identity': ageIdentityFlag(),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CertsRenew);
    const { renewCerts } = await import('../../lib/acme/renew.js');
    const { secretOpener } = await import('../../lib/secrets/opener.js');
    const r = await renewCerts({ fleet: flags.fleet, days: flags.days, issue: flags.yes, secrets: secretOpener({ flag: flags['age-identity'], env: process.env }), log: stderrLogger() });
    if (flags.json) this.out(json(r));
    else {
      if (r.items.length === 0) this.out('no app has tls.acme: nothing to renew');
      for (const i of r.items) {
        const who = `${i.tenant}/${i.app}`;
        const left = i.daysLeft === undefined ? 'no certificate yet' : `${i.daysLeft} day(s) left`;
        if (i.outcome === 'renewed') this.out(`renewed ${who} (${i.domains.join(', ')}): ${i.reason}, now valid until ${i.notAfter}`);
        else if (i.outcome === 'due') this.out(`due ${who} (${i.domains.join(', ')}): ${i.reason}, ${left}`);
        else if (i.outcome === 'failed') this.err(`failed ${who}: ${i.error}`);
        else this.out(`ok ${who}: ${left} (renews within ${r.days})`);
      }
      if (r.written.length) this.out(`wrote ${r.written.join(', ')}: review and commit, then \`edgectl apply\``);
      else if (r.due && !flags.yes) this.out(`${r.due} due: run again with --yes to issue`);
    }
    this.setExit(r.failed > 0 ? 1 : r.renewed > 0 || r.due > 0 ? 2 : 0);
  }
}
