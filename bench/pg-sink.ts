/**
 * PostgreSQL sink benchmark: 100,000 messages delivered as the hub delivers them (batches of the
 * forwarder's default 1000 messages, one batch in flight, each resolved after its COMMIT) into a
 * fresh database on 127.0.0.1:5432, and the same backlog into JetStream (127.0.0.1:4222, file
 * storage) with the NATS sink, in alternation, so both see the same machine. Prints rows/s and
 * messages/s per run and the median ratio; asserts nothing (issue 14's goal: PostgreSQL at least
 * 1.0x JetStream).
 *
 *   npx vite-node bench/pg-sink.ts [--messages 100000] [--batch 1000] [--body 100] [--runs 3] [--no-nats]
 *
 * Besides the device messages, every batch carries one heartbeat and one usage minute from its
 * node, as a hub's batches do (the agents' own messages are read first into each batch).
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { PostgresSink, parsePostgresSink } from '../src/lib/agent/sinks/postgres.js';
import { NatsSink } from '../src/lib/agent/sinks/nats.js';
import type { SpoolMessage } from '../src/lib/agent/store/record.js';
import { silentLogger } from '../src/lib/logger.js';

const arg = (name: string, d: number) => { const i = process.argv.indexOf(`--${name}`); return i === -1 ? d : Number(process.argv[i + 1]); };
const MESSAGES = arg('messages', 100_000);
const BATCH = arg('batch', 1000);
const BODY = arg('body', 100);
const RUNS = arg('runs', 3);
const NATS = !process.argv.includes('--no-nats');
const RUN = randomBytes(3).toString('hex');
const PG_ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', max: 1, onnotice: () => {} };

function backlog(run: number): SpoolMessage[][] {
  const ts = Date.now();
  const body = Buffer.from(JSON.stringify({ v: 'x'.repeat(Math.max(0, BODY - 8)) }));
  const batches: SpoolMessage[][] = [];
  let seq = 0;
  for (let b = 0; seq < MESSAGES; b++) {
    const node = `edge${b % 50}`;
    const batch: SpoolMessage[] = [];
    const minute = new Date(Math.floor(ts / 60_000) * 60_000 - b * 60_000).toISOString();
    batch.push({ id: `${node}:r${run}:h${b}`, tenant: '_agent', topic: 'heartbeat', contentType: 'application/json', ts, body: Buffer.from(JSON.stringify({ node, role: 'edge', time: new Date(ts + b).toISOString(), store: 'open', depth: 10, bytes: 1000, quarantined: 0, lastForward: null })) });
    batch.push({ id: `${node}:r${run}:u${b}`, tenant: '_agent', topic: 'usage', contentType: 'application/json', ts, body: Buffer.from(JSON.stringify({ v: 1, node, source: 'nginx', tenant: 'acme', app: 'acme-web', minute, requests: 10, bytesIn: 1, bytesOut: 2, status: { '1xx': 0, '2xx': 10, '3xx': 0, '4xx': 0, '5xx': 0 }, cache: { hit: 0, miss: 10 }, upstreamMs: null })) });
    while (batch.length < BATCH && seq < MESSAGES) batch.push({ id: `${node}:r${run}:${++seq}`, tenant: 'acme', topic: `t${seq % 4}`, contentType: 'application/json', ts, body });
    batches.push(batch);
  }
  return batches;
}

/** What the sinks take: the batch's messages (a hub's spool batch has more, which sinks do not read). */
interface MessageSink { deliver(batch: { messages: () => SpoolMessage[] }): Promise<void> }

async function drive(sink: MessageSink, batches: SpoolMessage[][]): Promise<{ seconds: number; messages: number }> {
  const t0 = process.hrtime.bigint();
  let messages = 0;
  for (const b of batches) {
    await sink.deliver({ messages: () => b });
    messages += b.length;
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, messages };
}

async function pgRun(run: number, batches: SpoolMessage[][]): Promise<{ rate: number; rows: number }> {
  const name = `edgectl_bench_pgsink_${RUN}_${run}`;
  const admin = postgres(PG_ADMIN);
  await admin.unsafe(`create database ${name}`);
  const sink = new PostgresSink(parsePostgresSink(`postgres://postgres@127.0.0.1:5432/${name}`), silentLogger);
  try {
    await sink.start();
    const r = await drive(sink, batches);
    const check = postgres({ ...PG_ADMIN, database: name });
    const [c] = await check`select (select count(*) from edgectl_messages)::int + (select count(*) from edgectl_heartbeats)::int + (select count(*) from edgectl_usage_minutes)::int as n`;
    await check.end();
    return { rate: r.messages / r.seconds, rows: c.n as number };
  } finally {
    await sink.close();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function natsRun(run: number, batches: SpoolMessage[][]): Promise<number> {
  const stream = `EDGECTL_BENCH_${RUN}_${run}`;
  const sink = new NatsSink({ servers: '127.0.0.1:4222', stream, prefix: `edgectlbench${RUN}${run}`, duplicateWindowSeconds: 600 }, silentLogger);
  try {
    const r = await drive(sink, batches);
    return r.messages / r.seconds;
  } finally {
    await sink.close();
    const { connect } = await import('nats');
    const nc = await connect({ servers: '127.0.0.1:4222' });
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => false);
    await nc.close();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`PostgreSQL sink: ${MESSAGES.toLocaleString('en-US')} device messages (+1 heartbeat, +1 usage minute per batch), batches of ${BATCH}, ${BODY}-byte bodies, ${RUNS} run(s)`);
const ratios: number[] = [];
const pgRates: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const batches = backlog(run);
  // Alternate which goes first: the second one of a pair finds warmer caches.
  const natsFirst = NATS && run % 2 === 1;
  const nats = natsFirst ? await natsRun(run, batches) : undefined;
  const pg = await pgRun(run, batches);
  const nats2 = NATS && !natsFirst ? await natsRun(run, batches) : nats;
  pgRates.push(pg.rate);
  let line = `  run ${run + 1}: PostgreSQL ${fmt(pg.rate)} msg/s (${fmt(pg.rows)} rows)`;
  if (nats2 !== undefined) {
    ratios.push(pg.rate / nats2);
    line += `, JetStream ${fmt(nats2)} msg/s, ratio ${(pg.rate / nats2).toFixed(2)}x`;
  }
  console.log(line);
}
console.log(`median: PostgreSQL ${fmt(median(pgRates))} msg/s${ratios.length ? `, ${median(ratios).toFixed(2)}x JetStream` : ''}`);
