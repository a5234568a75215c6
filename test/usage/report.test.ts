import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, json } from '../helpers/cli.js';
import { createTestDb, type TestDb } from '../agent/pg-db.js';
import { migrate } from '../../src/lib/agent/sinks/pg/migrate.js';
import { parseBound } from '../../src/lib/usage/bounds.js';
import { buildReport, csvField } from '../../src/lib/usage/report.js';

/**
 * `edgectl usage` against a real PostgreSQL (its own database, the sink's own migrations, dropped
 * after): minute rows put where the periods and bounds bite, then the report's sums, periods,
 * half-open bounds, CSV and errors. The chain that writes these rows is test/usage/metering-e2e.
 */
let db: TestDb;
const run = (args: string[], env?: Record<string, string>) => cli(['usage', ...args], { env });

interface Minute { node?: string; source?: 'nginx' | 'httpq'; tenant: string; app: string; minute: string; requests: number; up?: [number, number, number, number] | null; s?: [number, number, number, number, number]; hit?: number; miss?: number }
async function put(rows: Minute[]): Promise<void> {
  for (const r of rows) {
    const s = r.s ?? [0, r.requests, 0, 0, 0];
    const up = r.up ?? null;
    await db.sql`insert into edgectl_usage_minutes (node, source, tenant, app, minute, requests, bytes_in, bytes_out,
      status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, cache_hit, cache_miss,
      upstream_ms_p50, upstream_ms_p90, upstream_ms_p99, upstream_ms_max, message_id)
      values (${r.node ?? 'e1'}, ${r.source ?? 'nginx'}, ${r.tenant}, ${r.app}, ${r.minute}, ${r.requests}, ${r.requests * 100}, ${r.requests * 1000},
      ${s[0]}, ${s[1]}, ${s[2]}, ${s[3]}, ${s[4]}, ${r.hit ?? 0}, ${r.miss ?? 0},
      ${up?.[0] ?? null}, ${up?.[1] ?? null}, ${up?.[2] ?? null}, ${up?.[3] ?? null}, ${`${r.node ?? 'e1'}:u:${r.minute}:${r.app}`})`;
  }
}

beforeAll(async () => {
  db = await createTestDb('edgectl_usage_report');
  await migrate(db.sql);
  await put([
    // acme: across an hour, a day and a month boundary, from two nodes.
    { tenant: 'acme', app: 'acme.web', minute: '2026-11-30T23:59:00Z', requests: 5, up: [2, 4, 9, 12] },
    { tenant: 'acme', app: 'acme.web', minute: '2026-12-01T00:00:00Z', requests: 7, up: [3, 5, 7, 8] },
    { node: 'e2', tenant: 'acme', app: 'acme.web', minute: '2026-12-01T00:00:00Z', requests: 11, up: [1, 2, 20, 31], s: [0, 8, 1, 1, 1], hit: 4, miss: 6 },
    { tenant: 'acme', app: 'acme.web', minute: '2026-12-01T00:59:00Z', requests: 2, up: null },
    { tenant: 'acme', app: 'acme.web', minute: '2026-12-01T01:00:00Z', requests: 3, up: null },
    { tenant: 'acme', app: 'acme.api', minute: '2026-12-01T01:00:00Z', requests: 1 },
    { source: 'httpq', tenant: 'acme', app: 't', minute: '2026-12-01T00:30:00Z', requests: 40 },
    { tenant: 'globex', app: 'globex.shop', minute: '2026-12-02T10:00:00Z', requests: 9 },
    // A tenant name a spreadsheet would take for a formula cannot exist; an app with a comma cannot either, but the CSV must hold whatever the table holds.
    { tenant: 'initech', app: 'initech.a,"b"', minute: '2026-12-02T10:00:00Z', requests: 1 },
    // edgectl's own (agent) tenant is not a customer's.
    { tenant: '_agent', app: 'x', minute: '2026-12-02T10:00:00Z', requests: 1000 },
  ]);
}, 60_000);
afterAll(async () => { await db?.drop(); });

const total = (rep: any, tenant: string) => rep.totals.find((t: any) => t.tenant === tenant);

describe('edgectl usage (real PostgreSQL)', { timeout: 60_000 }, () => {
  it('whole span: per tenant, app and source; totals per tenant; the agent tenant left out', async () => {
    const r = await run(['--db', db.url(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = json(r);
    expect(rep).toMatchObject({ format: 'edgectl-usage/v1', from: null, to: null, by: null, tenants: null });
    expect(rep.rows.map((l: any) => [l.tenant, l.source, l.app, l.requests, l.start, l.end])).toEqual([
      ['acme', 'httpq', 't', 40, '2026-12-01T00:30:00.000Z', '2026-12-01T00:31:00.000Z'],
      ['acme', 'nginx', 'acme.api', 1, '2026-12-01T01:00:00.000Z', '2026-12-01T01:01:00.000Z'],
      ['acme', 'nginx', 'acme.web', 28, '2026-11-30T23:59:00.000Z', '2026-12-01T01:01:00.000Z'],
      ['globex', 'nginx', 'globex.shop', 9, '2026-12-02T10:00:00.000Z', '2026-12-02T10:01:00.000Z'],
      ['initech', 'nginx', 'initech.a,"b"', 1, '2026-12-02T10:00:00.000Z', '2026-12-02T10:01:00.000Z'],
    ]);
    const web = rep.rows.find((l: any) => l.app === 'acme.web');
    expect(web).toMatchObject({ minutes: 5, nodes: 2, bytesIn: 2800, bytesOut: 28000, status: { '1xx': 0, '2xx': 25, '3xx': 1, '4xx': 1, '5xx': 1 }, cache: { hit: 4, miss: 6 },
      upstreamMs: { p50Max: 3, p90Max: 5, p99Max: 20, max: 31 } });
    expect(rep.rows.find((l: any) => l.app === 'acme.api').upstreamMs).toBeNull();
    expect(total(rep, 'acme')).toMatchObject({ requests: 69, nginxRequests: 29, httpqMessages: 40 });
    expect(rep.totals.map((t: any) => t.tenant)).toEqual(['acme', 'globex', 'initech']);
  });

  it('--by hour|day|month: UTC periods, each minute in exactly one', async () => {
    const by = async (g: string) => json(await run(['--db', db.url(), '--json', '--tenant', 'acme', '--by', g])).rows
      .filter((l: any) => l.app === 'acme.web').map((l: any) => [l.start, l.end, l.requests]);
    expect(await by('hour')).toEqual([
      ['2026-11-30T23:00:00.000Z', '2026-12-01T00:00:00.000Z', 5],
      ['2026-12-01T00:00:00.000Z', '2026-12-01T01:00:00.000Z', 20],
      ['2026-12-01T01:00:00.000Z', '2026-12-01T02:00:00.000Z', 3],
    ]);
    expect(await by('day')).toEqual([['2026-11-30T00:00:00.000Z', '2026-12-01T00:00:00.000Z', 5], ['2026-12-01T00:00:00.000Z', '2026-12-02T00:00:00.000Z', 23]]);
    expect(await by('month')).toEqual([['2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', 5], ['2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', 23]]);
  });

  it('[from, to) is half-open in UTC: consecutive reports count each minute once; periods are clipped to the bounds', async () => {
    const req = async (...a: string[]) => total(json(await run(['--db', db.url(), '--json', '--tenant', 'acme', ...a])), 'acme').nginxRequests;
    const nov = await req('--from', '2026-11', '--to', '2026-12');
    const dec = await req('--from', '2026-12', '--to', '2027-01');
    expect([nov, dec]).toEqual([5, 24]);
    // The same instant as an offset: 01:00+01:00 is midnight UTC.
    expect(await req('--from', '2026-12-01T01:00+01:00', '--to', '2026-12-01T00:59Z')).toBe(18);
    expect(await req('--from', '2026-12-01T00:59Z', '--to', '2026-12-01T01:00Z')).toBe(2);
    const rep = json(await run(['--db', db.url(), '--json', '--tenant', 'acme', '--by', 'month', '--from', '2026-12-01T00:30Z', '--to', '2026-12-01T02:00Z']));
    expect(rep.rows.find((l: any) => l.app === 'acme.web')).toMatchObject({ start: '2026-12-01T00:30:00.000Z', end: '2026-12-01T02:00:00.000Z', requests: 5 });
    expect(rep.from).toBe('2026-12-01T00:30:00.000Z');
  });

  it('a tenant asked for with no usage is a total of 0; other tenants are not shown', async () => {
    const rep = json(await run(['--db', db.url(), '--json', '--tenant', 'globex', '--tenant', 'hooli']));
    expect(rep.rows.map((l: any) => l.tenant)).toEqual(['globex']);
    expect(rep.totals.map((t: any) => [t.tenant, t.requests])).toEqual([['globex', 9], ['hooli', 0]]);
  });

  it('--csv: one header, one line per row, RFC 4180 quoting, exact numbers; EDGECTL_HUB_DB works as --db', async () => {
    // Without --by, a row's period is the bounds asked for (here from --from to the last minute stored).
    const r = await run(['--csv', '--from', '2026-12-02'], { EDGECTL_HUB_DB: db.url() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\r\n')).toEqual([
      'start,end,tenant,source,app,requests,bytes_in,bytes_out,status_1xx,status_2xx,status_3xx,status_4xx,status_5xx,cache_hit,cache_miss,upstream_ms_p50_max,upstream_ms_p90_max,upstream_ms_p99_max,upstream_ms_max,minutes,nodes',
      '2026-12-02T00:00:00.000Z,2026-12-02T10:01:00.000Z,globex,nginx,globex.shop,9,900,9000,0,9,0,0,0,0,0,,,,,1,1',
      '2026-12-02T00:00:00.000Z,2026-12-02T10:01:00.000Z,initech,nginx,"initech.a,""b""",1,100,1000,0,1,0,0,0,0,0,,,,,1,1',
    ]); // (the CLI helper strips the final CRLF)
    expect([csvField('=cmd()'), csvField('a\nb'), csvField(12), csvField(null)]).toEqual(["'=cmd()", '"a\nb"', '12', '']);
  });

  it('the table: plain off a terminal, totals after it; "no usage" for an empty span', async () => {
    const r = await run(['--db', db.url(), '--tenant', 'acme']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout).toMatch(/acme\s+2026-11-30 23:59 \.\. 2026-12-01 01:01\s+acme\.web\s+28\s+2\.7 KiB\s+27 KiB\s+25 \/ 1 \/ 1 \/ 1\s+4 \/ 6\s+3\.0 \/ 20 \/ 31/);
    expect(r.stdout).toMatch(/acme\s+.*httpq t\s+40/);
    expect(r.stdout).toMatch(/totals for the first minute stored \.\. the last \(UTC\):\n {2}acme: 29 request\(s\), 40 HTTPQ message\(s\)/);
    const none = await run(['--db', db.url(), '--from', '2025-01', '--to', '2025-02']);
    expect([none.code, none.stdout.trim()]).toEqual([0, 'no usage in 2025-01-01 00:00 .. 2025-02-01 00:00 (UTC)']);
  });

  it('bad flags: exit 1 with what is wrong, no stack', async () => {
    const cases: [string[], RegExp][] = [
      [['--from', 'yesterday'], /--from "yesterday": not a date/],
      [['--from', '2026-02-30'], /--from "2026-02-30": no such date/],
      [['--to', '2026-12-01T10:00:30Z'], /a bound must be a whole minute/],
      [['--from', '2026-12', '--to', '2026-12'], /--from 2026-12-01T00:00:00.000Z is not before --to/],
      [['--tenant', 'Acme;drop'], /--tenant "Acme;drop" is not a tenant name/],
      [['--by', 'week'], /Expected --by=week to be one of: hour, day, month/],
      [['--json', '--csv'], /--csv=true cannot also be provided when using --json/],
    ];
    for (const [args, re] of cases) {
      const r = await run(['--db', db.url(), ...args]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([1, expect.stringMatching(re)]);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    }
    const noDb = await run([], { EDGECTL_HUB_DB: '' });
    expect([noDb.code, noDb.stderr]).toEqual([1, expect.stringMatching(/usage needs --db URL \(or EDGECTL_HUB_DB\)/)]);
    const mysql = await run(['--db', 'mysql://x']);
    expect([mysql.code, mysql.stderr]).toEqual([1, expect.stringMatching(/--db must be a postgres:\/\/ URL/)]);
  });

  it('database down or without the table: "cannot reach the hub database", no password, no stack, exit 1', async () => {
    const down = await run(['--db', 'postgres://postgres:s3cret-pw@127.0.0.1:1/nope']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^error cannot reach the hub database postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/nope: .*\[EDGECTL_HUB_DB\]/);
    expect(down.stderr + down.stdout).not.toContain('s3cret-pw');
    expect(down.stderr).not.toMatch(/\n\s+at /);
    const empty = await createTestDb('edgectl_usage_empty');
    try {
      const r = await run(['--db', empty.url()]);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/has no table edgectl_usage_minutes/)]);
    } finally {
      await empty.drop();
    }
  });

  it('bounds and sums, pure: every form parses to UTC; a sum beyond exact integers is refused', () => {
    expect(parseBound('--from', '2026-12').toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(parseBound('--from', '2026-12-02').toISOString()).toBe('2026-12-02T00:00:00.000Z');
    expect(parseBound('--from', '2026-12-02T10:05').toISOString()).toBe('2026-12-02T10:05:00.000Z');
    expect(parseBound('--from', '2026-12-02T10:05:00.000-05:30').toISOString()).toBe('2026-12-02T15:35:00.000Z');
    const row = { period: null, tenant: 'a', app: 'a.b', source: 'nginx', minutes: '1', nodes: '1', requests: '9007199254740993', bytes_in: '0', bytes_out: '0',
      status_1xx: '0', status_2xx: '0', status_3xx: '0', status_4xx: '0', status_5xx: '0', cache_hit: '0', cache_miss: '0', p50_max: null, p90_max: null, p99_max: null, max: null,
      first_minute: new Date(0), last_minute: new Date(0) };
    expect(() => buildReport([row], { from: null, to: null, by: null, tenants: null })).toThrow(/not a count this report can add exactly/);
  });
});
