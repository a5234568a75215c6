/**
 * The hub table `status --from-hub` reads, as the tests create it. The hub's PostgreSQL sink owns
 * the real one (its migrations); once both are in main, point HUB_SCHEMA_SQL at that migration
 * so this test reads exactly what the sink writes.
 */
export const HUB_SCHEMA_SQL = `
create table if not exists edgectl_heartbeats_latest (
  node text primary key,
  time timestamptz not null,
  body jsonb not null,
  received_at timestamptz not null default now()
)`;
