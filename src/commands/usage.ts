import { Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { json, tableOf } from '../cli/output.js';

export default class Usage extends EdgectlCommand {
  static override summary = 'Print the per-tenant usage report a billing run needs, from the hub\'s PostgreSQL';
  static override description = `Sums the usage minutes that edge agents ship to the hub (table edgectl_usage_minutes of --db or EDGECTL_HUB_DB, written by the hub's PostgreSQL sink) per tenant, app and period: requests served by nginx and HTTPQ messages accepted, bytes in and out, status classes, cache hits and misses, and upstream time. Every time is UTC; the report covers the minutes in [--from, --to): --from included, --to excluded, so consecutive reports (--from 2026-11 --to 2026-12, then --from 2026-12) count each minute once. Bounds are YYYY-MM, YYYY-MM-DD or an ISO 8601 date-time on a whole minute.

Upstream time: each minute carries its own p50/p90/p99/max; a period shows the highest minute value of each, an upper bound of the period's percentile, and the exact max (docs/usage.md).

Exit status: 0 the report was printed (also when it is empty), 1 bad flags or the database could not be read.`;
  static override examples = [
    '<%= config.bin %> usage --db postgres://edgectl@hub.example/edgectl --from 2026-11 --to 2026-12',
    '<%= config.bin %> usage --tenant acme --from 2026-12-01 --by day --csv > acme-december.csv',
    'EDGECTL_HUB_DB=postgres://edgectl@hub.example/edgectl <%= config.bin %> usage --by hour --from 2026-12-02T00:00Z --json',
  ];
  static override flags = {
    db: Flags.string({ summary: 'The hub\'s PostgreSQL URL', env: 'EDGECTL_HUB_DB', helpValue: 'URL' }),
    tenant: Flags.string({ summary: 'Only this tenant (repeatable)', multiple: true, helpValue: 'NAME' }),
    from: Flags.string({ summary: 'First minute counted, UTC (YYYY-MM, YYYY-MM-DD or ISO date-time); default: the first stored', helpValue: 'TIME' }),
    to: Flags.string({ summary: 'End, excluded, UTC (same forms); default: up to the last stored minute', helpValue: 'TIME' }),
    by: Flags.string({ summary: 'One row per hour, day or month (UTC); default: one row for the whole span', options: ['hour', 'day', 'month'] }),
    json: Flags.boolean({ summary: 'Print one JSON object: rows and per-tenant totals', exclusive: ['csv'] }),
    csv: Flags.boolean({ summary: 'Print CSV (RFC 4180, CRLF): one line per row, exact numbers', exclusive: ['json'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Usage);
    const { EdgectlError } = await import('../lib/errors.js');
    const { parseBound } = await import('../lib/usage/bounds.js');
    const { buildReport, usageCsv } = await import('../lib/usage/report.js');
    if (!flags.db) throw new EdgectlError('EDGECTL_USAGE', 'usage needs --db URL (or EDGECTL_HUB_DB): the hub\'s PostgreSQL database');
    const from = flags.from !== undefined ? parseBound('--from', flags.from) : null;
    const to = flags.to !== undefined ? parseBound('--to', flags.to) : null;
    if (from && to && from.getTime() >= to.getTime()) throw new EdgectlError('EDGECTL_USAGE', `--from ${from.toISOString()} is not before --to ${to.toISOString()}: the report covers [from, to)`);
    const tenants = flags.tenant ? [...new Set(flags.tenant)] : null;
    const { RE } = await import('../lib/fleet/values.js');
    for (const t of tenants ?? []) {
      if (!RE.dnsLabel.test(t)) throw new EdgectlError('EDGECTL_USAGE', `--tenant ${JSON.stringify(t.slice(0, 70))} is not a tenant name (lower-case letters, digits and '-', as in tenants.yaml)`);
    }
    const by = (flags.by ?? null) as 'hour' | 'day' | 'month' | null;
    const { readUsage } = await import('../lib/usage/db.js');
    const report = buildReport(await readUsage(flags.db, { from, to, by, tenants }), { from, to, by, tenants });
    if (flags.json) return this.out(json(report));
    if (flags.csv) {
      process.stdout.write(usageCsv(report));
      return;
    }
    const { usageTable, usageTotalsText } = await import('../lib/output/usage-table.js');
    this.out(report.rows.length > 0 ? `${tableOf(usageTable(report))}\n${usageTotalsText(report)}` : usageTotalsText(report));
  }
}
