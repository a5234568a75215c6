import { createHash } from 'node:crypto';
import type { Sql } from 'postgres';
import { MIGRATIONS, type Migration } from './migrations.js';

/** The schema in the database is not one this agent may write to: the hub must not start. */
export class SchemaRefused extends Error {}

export interface AppliedMigration {
  version: number;
  name: string;
  sha256: string;
}

export const sha256Of = (m: Migration) => createHash('sha256').update(m.sql, 'utf8').digest('hex');

/**
 * Which shipped migrations to apply, given those the database has recorded; or why not to touch
 * it at all. Pure, so every refusal is tested without a database.
 */
export function planMigrations(applied: AppliedMigration[], shipped: readonly Migration[] = MIGRATIONS): { pending: Migration[] } | { refuse: string } {
  const known = new Map(shipped.map((m) => [m.version, m]));
  const newest = shipped.reduce((n, m) => Math.max(n, m.version), 0);
  const ahead = applied.filter((a) => !known.has(a.version)).map((a) => a.version).sort((a, b) => a - b);
  if (ahead.length > 0) {
    return { refuse: `the database's schema is newer than this agent: it has migration ${ahead.join(', ')} (this agent knows up to ${newest}); upgrade the hub's agent, or point it at another database` };
  }
  for (const a of applied) {
    const want = sha256Of(known.get(a.version)!);
    if (a.sha256 !== want) {
      return { refuse: `migration ${a.version} (${a.name}) was applied with sha256 ${a.sha256}, but this agent ships sha256 ${want} for it: the schema was changed outside edgectl or by another build; check edgectl_schema_migrations before starting the hub` };
    }
  }
  const done = new Set(applied.map((a) => a.version));
  const top = applied.reduce((n, a) => Math.max(n, a.version), 0);
  const pending = shipped.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
  const gap = pending.find((m) => m.version < top);
  if (gap) return { refuse: `migration ${gap.version} (${gap.name}) is missing from a database already at ${top}: refusing to apply migrations out of order` };
  return { pending };
}

/** Any constant works as long as every hub uses the same one: it serialises their migrations. */
const LOCK_KEY = 0x656467656374n; // "edgect"

/**
 * Brings the schema up to the shipped migrations: in one transaction, under a transaction-scoped
 * advisory lock, so two hubs starting at once apply each migration once (the second waits, then
 * finds it recorded). A failure rolls back everything, the lock included. Returns the versions applied.
 */
export async function migrate(sql: Sql, shipped: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`set local lock_timeout = '60s'`;
    await tx`select pg_advisory_xact_lock(${LOCK_KEY.toString()}::bigint)`;
    await tx`create table if not exists edgectl_schema_migrations (
      version    integer primary key,
      name       text not null,
      sha256     text not null,
      applied_at timestamptz not null default now()
    )`;
    const applied = await tx<AppliedMigration[]>`select version, name, sha256 from edgectl_schema_migrations order by version`;
    const plan = planMigrations([...applied], shipped);
    if ('refuse' in plan) throw new SchemaRefused(plan.refuse);
    for (const m of plan.pending) {
      await tx.unsafe(m.sql).simple();
      await tx`insert into edgectl_schema_migrations (version, name, sha256) values (${m.version}, ${m.name}, ${sha256Of(m)})`;
    }
    return plan.pending.map((m) => m.version);
  });
}
