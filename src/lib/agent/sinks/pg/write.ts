import type { PendingQuery, Row, TransactionSql } from 'postgres';
import type { BatchRows } from './rows.js';
import { arrayLiteral as a, byteaLiteral } from './array.js';

/**
 * The statements of one delivered batch, multi-row through unnest(), all inside the caller's
 * transaction and sent pipelined. Every insert is keyed by what makes the row the same row
 * (message id; heartbeat node and time; usage node, source, tenant, app and minute), so the
 * replay of a batch whose COMMIT the hub never saw confirmed changes nothing. The latest-heartbeat
 * row moves only forward in time: a late repeat never overwrites a newer beat.
 */
export function batchStatements(tx: TransactionSql, r: BatchRows): PendingQuery<Row[]>[] {
  const out: PendingQuery<Row[]>[] = [];
  const m = r.messages;
  if (m.id.length > 0) {
    out.push(tx`insert into edgectl_messages (id, tenant, topic, content_type, body, node, accepted_at, problem)
      select id, tenant, topic, content_type, body, node, accepted_at, problem
      from unnest(${a(m.id)}::text[], ${a(m.tenant)}::text[], ${a(m.topic)}::text[], ${a(m.contentType)}::text[], ${byteaLiteral(m.body)}::bytea[],
                  ${a(m.node)}::text[], ${a(m.acceptedAt)}::timestamptz[], ${a(m.problem)}::text[])
        with ordinality as t(id, tenant, topic, content_type, body, node, accepted_at, problem, ord)
      order by ord
      on conflict (id) do nothing`);
  }
  if (r.heartbeats.length > 0) {
    const h = r.heartbeats;
    out.push(tx`insert into edgectl_heartbeats (node, time, body, message_id)
      select * from unnest(${a(h.map((x) => x.node))}::text[], ${a(h.map((x) => x.time))}::timestamptz[], ${a(h.map((x) => x.json))}::jsonb[], ${a(h.map((x) => x.messageId))}::text[])
      on conflict (node, time) do nothing`);
    const l = r.latest;
    out.push(tx`insert into edgectl_heartbeats_latest as l (node, time, body)
      select * from unnest(${a(l.map((x) => x.node))}::text[], ${a(l.map((x) => x.time))}::timestamptz[], ${a(l.map((x) => x.json))}::jsonb[])
      on conflict (node) do update set time = excluded.time, body = excluded.body, received_at = now()
      where l.time < excluded.time`);
  }
  const u = r.usage;
  if (u.node.length > 0) {
    out.push(tx`insert into edgectl_usage_minutes (node, source, tenant, app, minute, requests, bytes_in, bytes_out,
        status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, cache_hit, cache_miss,
        upstream_ms_p50, upstream_ms_p90, upstream_ms_p99, upstream_ms_max, message_id)
      select * from unnest(${a(u.node)}::text[], ${a(u.source)}::text[], ${a(u.tenant)}::text[], ${a(u.app)}::text[], ${a(u.minute)}::timestamptz[],
        ${a(u.requests)}::bigint[], ${a(u.bytesIn)}::bigint[], ${a(u.bytesOut)}::bigint[],
        ${a(u.s1)}::bigint[], ${a(u.s2)}::bigint[], ${a(u.s3)}::bigint[], ${a(u.s4)}::bigint[], ${a(u.s5)}::bigint[],
        ${a(u.hit)}::bigint[], ${a(u.miss)}::bigint[],
        ${a(u.p50)}::float8[], ${a(u.p90)}::float8[], ${a(u.p99)}::float8[], ${a(u.max)}::float8[], ${a(u.messageId)}::text[])
      on conflict (node, source, tenant, app, minute) do nothing`);
  }
  return out;
}
