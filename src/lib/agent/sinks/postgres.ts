import type { Sql } from 'postgres';
import { type Deliverer, DeliveryError } from '../forward/deliverer.js';
import type { Batch } from '../store/spool.js';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';
import { migrate, SchemaRefused } from './pg/migrate.js';
import { batchRows } from './pg/rows.js';
import { batchStatements } from './pg/write.js';
import { redactSpec, scrub } from './pg/redact.js';

export interface PostgresSinkOptions {
  /** The URL as given, password included: handed to the driver, never printed. */
  url: string;
  /** host:port/database, for names, logs and errors. */
  where: string;
  /** What error texts must never show. */
  secrets: string[];
  /** A batch (or the migrations) taking longer than this drops the connection and fails; ms. */
  timeoutMs: number;
}

const QUERY = new Set(['sslmode', 'host']);
const SSLMODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-full']);

/**
 * postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?sslmode=…] (or postgresql://). The password
 * may also come from PGPASSWORD, which keeps it out of argv and agent.json. Other query
 * parameters are refused: the driver would send them to the server as settings.
 */
export function parsePostgresSink(spec: string, timeoutMs = 60_000): PostgresSinkOptions {
  const shown = redactSpec(spec);
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new Error(`postgres sink: ${shown} is not a URL (postgres://USER@HOST:PORT/DATABASE)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`postgres sink: ${shown} is not a postgres:// URL`);
  for (const [k, v] of u.searchParams) {
    if (!QUERY.has(k)) throw new Error(`postgres sink: query parameter "${k.slice(0, 40)}" is not supported (only sslmode and host)`);
    if (k === 'sslmode' && !SSLMODES.has(v)) throw new Error(`postgres sink: sslmode must be one of ${[...SSLMODES].join(', ')}`);
  }
  const database = decodeURIComponent(u.pathname.slice(1));
  if (!database || database.includes('/')) throw new Error(`postgres sink: ${shown} names no database (postgres://USER@HOST:PORT/DATABASE)`);
  if (!u.hostname && !u.searchParams.get('host')) throw new Error(`postgres sink: ${shown} names no host`);
  const password = decodeURIComponent(u.password);
  const host = u.hostname || u.searchParams.get('host')!;
  return {
    url: spec,
    where: `${host}:${u.port || 5432}/${database}`,
    secrets: [password, u.password, process.env.PGPASSWORD ?? ''].filter((s) => s.length > 0),
    timeoutMs,
  };
}

/** Server errors that no retry will cure: the hub refuses to start on them (auth, no database, no right to create tables). */
const FATAL_CLASSES = ['28', '3D', '42'];

/**
 * Device messages, heartbeats and usage minutes into PostgreSQL (pg/migrations.ts has the
 * tables). One transaction per delivered batch; deliver resolves only after COMMIT, so the hub
 * deletes from its spool only what is committed. A batch comes again only when its COMMIT was
 * not confirmed (hub crash, lost connection), and then every row is a key conflict that does
 * nothing: each message is stored exactly once.
 */
export class PostgresSink implements Deliverer {
  readonly name: string;
  private sql?: Sql;
  private migrated = false;
  /** Agent messages whose body did not parse as a heartbeat or usage minute (stored as messages). */
  malformed = 0;

  constructor(private opts: PostgresSinkOptions, private log: Logger) {
    this.name = `postgres:${opts.where}`;
  }

  /**
   * At hub start: connects and applies the migrations. A schema this agent may not write to, or a
   * server that refuses us for good (bad password, no database, no rights), stops the start;
   * a database that is only unreachable does not: the hub spools, and deliver migrates first.
   */
  async start(): Promise<void> {
    try {
      await this.ready();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (err instanceof SchemaRefused || (typeof code === 'string' && FATAL_CLASSES.includes(code.slice(0, 2)))) {
        await this.reset();
        throw new Error(this.describe(err), { cause: err });
      }
      this.log.warn('PostgreSQL is unreachable at start; the hub keeps everything in its spool and migrates before the first delivery', { sink: this.name, error: this.describe(err) });
    }
  }

  private async ready(): Promise<Sql> {
    if (!this.sql) {
      const { default: postgres } = await import('postgres');
      this.sql = postgres(this.opts.url, {
        max: 1, fetch_types: false, prepare: true, connect_timeout: 10, idle_timeout: 0,
        onnotice: () => {}, connection: { application_name: 'edgectl-hub' },
      });
    }
    if (!this.migrated) {
      const applied = await this.bounded(migrate(this.sql));
      this.migrated = true;
      if (applied.length > 0) this.log.info('applied PostgreSQL migrations', { sink: this.name, versions: applied });
    }
    return this.sql;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    const rows = batchRows(batch.messages());
    try {
      const sql = await this.ready();
      const results = await this.bounded(sql.begin((tx) => batchStatements(tx, rows)));
      const stored = rows.messages.id.length > 0 ? results[0].count : 0;
      if (stored < rows.messages.id.length) {
        this.log.info('messages already in PostgreSQL were skipped (a batch delivered again after a crash or a lost COMMIT answer)', { sink: this.name, count: rows.messages.id.length - stored });
      }
    } catch (err) {
      // Checked again on the next try: cheap (one transaction), and right after a database restore.
      this.migrated = false;
      throw new DeliveryError(this.describe(err), undefined, { cause: err });
    }
    if (rows.malformed.length > 0) {
      this.malformed += rows.malformed.length;
      this.log.warn('agent messages that are not a heartbeat or usage minute were stored in edgectl_messages with their problem', {
        sink: this.name, count: rows.malformed.length, total: this.malformed, first: rows.malformed.slice(0, 3),
      });
    }
  }

  /** A query that hangs (a peer gone without a reset) would hold the one batch in flight forever. */
  private async bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void this.reset();
        reject(new Error(`no answer within ${this.opts.timeoutMs} ms; connection dropped`));
      }, this.opts.timeoutMs);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private describe(err: unknown): string {
    return `PostgreSQL ${this.opts.where}: ${scrub(errorMessage(err), this.opts.secrets)}`;
  }

  private async reset(): Promise<void> {
    const sql = this.sql;
    this.sql = undefined;
    this.migrated = false;
    await sql?.end({ timeout: 0 }).catch(() => {});
  }

  async close(): Promise<void> {
    const sql = this.sql;
    this.sql = undefined;
    await sql?.end({ timeout: 5 }).catch(() => {});
  }
}
