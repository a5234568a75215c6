import postgres, { type Sql } from 'postgres';
import { randomBytes } from 'node:crypto';

/** The machine's PostgreSQL (trust auth). Each test file makes its own database and drops it after. */
export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;

export interface TestDb {
  name: string;
  /** A sink URL for this database; through another port (a proxy) and with a password when given. */
  url(opts?: { port?: number; password?: string }): string;
  /** A client on this database, for the test's own checks. */
  sql: Sql;
  /** Drops the schema's tables (a fresh start within the same database). */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

export async function createTestDb(prefix: string): Promise<TestDb> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = postgres({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres', max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const sql = postgres({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: name, max: 2, onnotice: () => {} });
  return {
    name,
    url: (o = {}) => `postgres://postgres${o.password ? `:${encodeURIComponent(o.password)}` : ''}@${PG_HOST}:${o.port ?? PG_PORT}/${name}`,
    sql,
    reset: async () => {
      await sql.unsafe('drop table if exists edgectl_messages, edgectl_heartbeats, edgectl_heartbeats_latest, edgectl_usage_minutes, edgectl_schema_migrations');
    },
    drop: async () => {
      await sql.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    },
  };
}
