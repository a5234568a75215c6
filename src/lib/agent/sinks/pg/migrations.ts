/**
 * The PostgreSQL sink's schema, as versioned migrations applied at hub start (migrate.ts). Kept as
 * TypeScript constants so the agent bundle carries them. A migration that has shipped is never
 * edited: its sha256 is recorded in edgectl_schema_migrations and a hub refuses to start against a
 * database whose recorded checksum differs. A change is a new migration with the next version.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const V1 = `
create table edgectl_messages (
  id           text primary key,
  seq          bigint generated always as identity,
  tenant       text not null,
  topic        text not null,
  content_type text not null,
  body         bytea not null,
  node         text not null,
  accepted_at  timestamptz,
  stored_at    timestamptz not null default now(),
  problem      text
);
comment on column edgectl_messages.seq is 'store order at the hub: per topic, the order the hub delivered them';
comment on column edgectl_messages.accepted_at is 'when the first hop accepted it; null when the hop sent a time out of range';
comment on column edgectl_messages.problem is 'set for an agent message (tenant _agent) whose body did not parse as a heartbeat or usage minute';
create index edgectl_messages_topic_seq on edgectl_messages (tenant, topic, seq);

create table edgectl_heartbeats_latest (
  node        text primary key,
  time        timestamptz not null,
  body        jsonb not null,
  received_at timestamptz not null default now()
);

create table edgectl_heartbeats (
  node        text not null,
  time        timestamptz not null,
  body        jsonb not null,
  message_id  text not null,
  received_at timestamptz not null default now(),
  primary key (node, time)
);

create table edgectl_usage_minutes (
  node            text not null,
  source          text not null check (source in ('nginx', 'httpq')),
  tenant          text not null,
  app             text not null,
  minute          timestamptz not null,
  requests        bigint not null,
  bytes_in        bigint not null,
  bytes_out       bigint not null,
  status_1xx      bigint not null,
  status_2xx      bigint not null,
  status_3xx      bigint not null,
  status_4xx      bigint not null,
  status_5xx      bigint not null,
  cache_hit       bigint not null,
  cache_miss      bigint not null,
  upstream_ms_p50 double precision,
  upstream_ms_p90 double precision,
  upstream_ms_p99 double precision,
  upstream_ms_max double precision,
  message_id      text not null,
  received_at     timestamptz not null default now(),
  primary key (node, source, tenant, app, minute)
);
create index edgectl_usage_minutes_tenant_minute on edgectl_usage_minutes (tenant, minute);
`;

/** In version order; the last one's version is the schema this agent knows. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'messages, heartbeats (latest and history), usage minutes', sql: V1 },
];
