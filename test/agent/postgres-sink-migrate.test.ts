import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS, type Migration } from '../../src/lib/agent/sinks/pg/migrations.js';
import { migrate, planMigrations, sha256Of } from '../../src/lib/agent/sinks/pg/migrate.js';
import { freePortRange } from '../helpers/ports.js';
import { type AgentProc, killAll, startAgent, stopAgent, waitFor } from './helpers.js';
import { createTestDb, PG_HOST, PG_PORT, type TestDb } from './pg-db.js';

// Versioned migrations at hub start: applied once, in one transaction under an advisory lock;
// a changed checksum or a database newer than the agent stops the hub with a clear error.

let dir: string;
let db: TestDb;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-pgmigrate-'));
  db = await createTestDb('edgectl_pgsink_migrate');
});
afterAll(async () => {
  await killAll();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function hub(opts: { waitHealthy?: boolean } = {}): Promise<AgentProc> {
  const port = await freePortRange(2);
  return startAgent(`hub-m${++n}`, port, port + 1, ['--role', 'hub', '--data', path.join(dir, `h${n}`), '--sink', db.url(), '--heartbeat-seconds', '0'], opts);
}
async function exitOf(a: AgentProc): Promise<{ code: number | null; log: string }> {
  if (a.proc.exitCode === null) await waitFor(() => a.proc.exitCode !== null, 30_000, `${a.name} to refuse to start`);
  return { code: a.proc.exitCode, log: a.log.join('') };
}
const recorded = () => db.sql<{ version: number; name: string; sha256: string; applied_at: Date }[]>`select * from edgectl_schema_migrations order by version`;

describe('postgres sink migrations', { timeout: 180_000 }, () => {
  it('plans: fresh, up to date, tampered, newer than the agent, out of order', () => {
    const v2: Migration = { version: 2, name: 'two', sql: 'select 2' };
    const rec = (m: Migration) => ({ version: m.version, name: m.name, sha256: sha256Of(m) });
    expect(planMigrations([], [...MIGRATIONS, v2])).toEqual({ pending: [...MIGRATIONS, v2] });
    expect(planMigrations([rec(MIGRATIONS[0])], [...MIGRATIONS, v2])).toEqual({ pending: [v2] });
    expect(planMigrations([rec(MIGRATIONS[0])])).toEqual({ pending: [] });
    expect(planMigrations([{ ...rec(MIGRATIONS[0]), sha256: 'f'.repeat(64) }])).toEqual({ refuse: expect.stringMatching(/^migration 1 .* was applied with sha256 f{64}, but this agent ships sha256 [0-9a-f]{64}/) });
    expect(planMigrations([rec(MIGRATIONS[0]), rec(v2)])).toEqual({ refuse: expect.stringMatching(/newer than this agent: it has migration 2 \(this agent knows up to 1\)/) });
    expect(planMigrations([rec(v2)], [...MIGRATIONS, v2])).toEqual({ refuse: expect.stringMatching(/migration 1 .* is missing from a database already at 2/) });
  });

  it('applies the schema at the first start, nothing at the second', async () => {
    const first = await hub();
    await stopAgent(first);
    expect(first.log.join('')).toMatch(/"applied PostgreSQL migrations".*"versions":\[1\]/);
    const rows = await recorded();
    expect(rows.map((r) => [r.version, r.name, r.sha256])).toEqual(MIGRATIONS.map((m) => [m.version, m.name, sha256Of(m)]));
    const second = await hub();
    await stopAgent(second);
    expect(second.log.join('')).not.toMatch(/applied PostgreSQL migrations/);
    expect((await recorded()).map((r) => r.applied_at.getTime())).toEqual(rows.map((r) => r.applied_at.getTime()));
  });

  it('refuses to start when an applied migration differs from the shipped one, or the database is newer', async () => {
    const good = (await recorded())[0].sha256;
    await db.sql`update edgectl_schema_migrations set sha256 = ${'0'.repeat(64)} where version = 1`;
    try {
      const tampered = await exitOf(await hub({ waitHealthy: false }));
      expect(tampered.code).toBe(1);
      expect(tampered.log).toMatch(new RegExp(`migration 1 \\(.*\\) was applied with sha256 0{64}, but this agent ships sha256 ${good}.*check edgectl_schema_migrations`));
      expect(tampered.log).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await db.sql`update edgectl_schema_migrations set sha256 = ${good} where version = 1`;
    }
    await db.sql`insert into edgectl_schema_migrations (version, name, sha256) values (7, 'from a newer agent', ${'1'.repeat(64)})`;
    try {
      const newer = await exitOf(await hub({ waitHealthy: false }));
      expect(newer.code).toBe(1);
      expect(newer.log).toMatch(/schema is newer than this agent: it has migration 7 \(this agent knows up to 1\); upgrade the hub's agent/);
    } finally {
      await db.sql`delete from edgectl_schema_migrations where version = 7`;
    }
  });

  it('two hubs starting at once both come up, and the schema is applied once', async () => {
    await db.reset();
    const [a, b] = await Promise.all([hub(), hub()]);
    await Promise.all([stopAgent(a), stopAgent(b)]);
    const logs = [a, b].map((h) => h.log.join(''));
    expect(logs.filter((l) => /applied PostgreSQL migrations/.test(l))).toHaveLength(1);
    expect((await recorded()).map((r) => r.version)).toEqual([1]);
  });

  it('serialises concurrent migrations under the advisory lock: the second waits and applies nothing', async () => {
    const race = await createTestDb('edgectl_pgsink_race');
    // A slow migration widens the window in which two unlocked runners would both apply it.
    const slow: Migration[] = [{ version: 1, name: 'slow', sql: 'select pg_sleep(0.5); create table edgectl_probe (x int);' }];
    const clients = [0, 1].map(() => postgres({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: race.name, max: 1, onnotice: () => {} }));
    try {
      const results = await Promise.all(clients.map((c) => migrate(c, slow)));
      expect(results.sort()).toEqual([[], [1]]);
      expect((await race.sql`select version from edgectl_schema_migrations`).map((r) => r.version)).toEqual([1]);
    } finally {
      await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
      await race.drop();
    }
  });
});
