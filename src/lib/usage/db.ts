import { EdgectlError, errorMessage } from '../errors.js';
import { redactUrl, withHubDb } from '../status/hub.js';
import type { Granularity } from './bounds.js';
import type { SummedRow } from './report.js';

/** The hub's usage table, as the PostgreSQL sink's migrations create it (sinks/pg/migrations.ts). */
export const USAGE_TABLE = 'edgectl_usage_minutes';

export interface ReadOptions {
  from: Date | null;
  to: Date | null;
  by: Granularity | null;
  tenants: string[] | null;
}

const HINT = 'Check --db (or EDGECTL_HUB_DB): a postgres:// URL of the hub\'s database, reachable from here, whose user may read edgectl_usage_minutes (the hub\'s PostgreSQL sink creates it at its first start).';

/** Connection failures (refused, DNS, timeout, auth) as against a query that failed on a reachable server. */
function unreachable(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code ?? '';
  return /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|CONNECT_TIMEOUT|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|28P01|28000|3D000)$/.test(code);
}

/**
 * Sums edgectl_usage_minutes per tenant, app, source and period (date_trunc in UTC) for minutes
 * in [from, to). Summing is done by PostgreSQL, so a month of a big fleet is one small answer.
 * One read-only transaction: a hub inserting meanwhile cannot make the groups disagree.
 */
export async function readUsage(url: string, o: ReadOptions): Promise<SummedRow[]> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new EdgectlError('EDGECTL_USAGE', `--db must be a postgres:// URL, got ${JSON.stringify(redactUrl(url).slice(0, 80))}`);
  const fail = (e: unknown) => unreachable(e)
    ? new EdgectlError('EDGECTL_HUB_DB', `cannot reach the hub database ${redactUrl(url)}: ${redactUrl(errorMessage(e))}`, { hint: HINT })
    : (e as { code?: string }).code === '42P01'
      ? new EdgectlError('EDGECTL_HUB_DB', `the hub database ${redactUrl(url)} has no table ${USAGE_TABLE}: no hub with the PostgreSQL sink has started on it`, { hint: HINT })
      : new EdgectlError('EDGECTL_HUB_DB', `cannot read usage from ${redactUrl(url)}: ${redactUrl(errorMessage(e))}`, { hint: HINT });
  return withHubDb(url, 'edgectl usage', fail, async (sql) => {
    const period = o.by ? sql`date_trunc(${o.by}, minute at time zone 'UTC') at time zone 'UTC'` : sql`null::timestamptz`;
    return await sql.begin('read only', (tx) => tx<SummedRow[]>`
      select ${period} as period, tenant, app, source,
        count(*)::bigint as minutes, count(distinct node)::bigint as nodes,
        sum(requests) as requests, sum(bytes_in) as bytes_in, sum(bytes_out) as bytes_out,
        sum(status_1xx) as status_1xx, sum(status_2xx) as status_2xx, sum(status_3xx) as status_3xx,
        sum(status_4xx) as status_4xx, sum(status_5xx) as status_5xx,
        sum(cache_hit) as cache_hit, sum(cache_miss) as cache_miss,
        max(upstream_ms_p50) as p50_max, max(upstream_ms_p90) as p90_max, max(upstream_ms_p99) as p99_max, max(upstream_ms_max) as max,
        min(minute) as first_minute, max(minute) as last_minute
      from ${sql(USAGE_TABLE)}
      where true
        ${o.from ? sql`and minute >= ${o.from}` : sql``}
        ${o.to ? sql`and minute < ${o.to}` : sql``}
        ${o.tenants ? sql`and tenant = any(${o.tenants}::text[])` : sql``}
        and tenant <> '_agent'
      group by 1, tenant, app, source`);
  });
}
