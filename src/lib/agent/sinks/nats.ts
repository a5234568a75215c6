import type { NatsConnection } from 'nats';
import type { Deliverer } from '../forward/deliverer.js';
import { DeliveryError } from '../forward/deliverer.js';
import type { SpoolMessage } from '../store/record.js';
import type { Batch } from '../store/spool.js';
import type { Logger } from '../../logger.js';
import { errorMessage } from '../../errors.js';

export interface NatsSinkOptions {
  servers: string;
  /** Stream to publish into (created if missing). */
  stream: string;
  /** Subjects are <prefix>.<tenant>.<topic>. */
  prefix: string;
  /** Stream duplicate window for Nats-Msg-Id dedupe, seconds. */
  duplicateWindowSeconds: number;
}

/** nats://HOST:PORT[?stream=EDGECTL&prefix=edgectl&duplicateWindow=600] */
export function parseNatsSink(spec: string): NatsSinkOptions {
  const u = new URL(spec);
  const stream = u.searchParams.get('stream') ?? 'EDGECTL';
  const prefix = u.searchParams.get('prefix') ?? 'edgectl';
  const dup = Number(u.searchParams.get('duplicateWindow') ?? 600);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stream)) throw new Error('nats sink: stream must be a plain name');
  if (!/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})*$/.test(prefix)) throw new Error('nats sink: prefix must be plain subject tokens');
  if (!Number.isInteger(dup) || dup < 1) throw new Error('nats sink: duplicateWindow must be whole seconds');
  return { servers: `${u.hostname}:${u.port || 4222}`, stream, prefix, duplicateWindowSeconds: dup };
}

/** A batch's publishes waiting for their acks (NatsSink.waiting). */
interface Waiting {
  left: number;
  done: (err?: Error & { noResponders?: boolean }) => void;
}

const ACK_TIMEOUT_MS = 15_000;

/**
 * JetStream: subject <prefix>.<tenant>.<topic>, Nats-Msg-Id = message id (JetStream drops
 * repeats within the duplicate window), and a batch counts as delivered only when every
 * publish has its JetStream ack. One connection keeps publish order per topic.
 *
 * Publishes are plain core publishes with a reply subject, the batch's own under one inbox
 * subscription: JetStream sends each PubAck there. nats.js's `js.publish` is a request per
 * message, and a request that succeeds builds a NatsError as it cancels its timer (11% of the
 * hub's CPU while draining, with stack traces off): here a batch has one timer, and an ack is
 * counted when it is a PubAck of our stream.
 */
export class NatsSink implements Deliverer {
  readonly name: string;
  private nc?: NatsConnection;
  /** The inbox subscription's prefix (`<inbox>.`) and the batches waiting on it, by number. */
  private inbox = '';
  private waiting = new Map<number, Waiting>();
  private batchNo = 0;
  /** After start-up or a failed batch: check what already reached the stream before publishing again. */
  private verify = true;

  constructor(private opts: NatsSinkOptions, private log: Logger) {
    this.name = `nats:${opts.servers}/${opts.stream}`;
  }

  private async ready(): Promise<NatsConnection> {
    if (this.inbox && this.nc && !this.nc.isClosed()) return this.nc;
    if (this.nc) await this.reset();
    const { connect, nanos, createInbox, StorageType } = await import('nats');
    // noAsyncTraces: otherwise every request builds two Errors up front (stack traces for a timeout
    // it may never report).
    const nc = (this.nc = await connect({ servers: this.opts.servers, maxReconnectAttempts: -1, reconnectTimeWait: 500, name: 'edgectl-hub', noAsyncTraces: true }));
    const jsm = await nc.jetstreamManager();
    try {
      await jsm.streams.info(this.opts.stream);
    } catch {
      await jsm.streams.add({ name: this.opts.stream, subjects: [`${this.opts.prefix}.>`], storage: StorageType.File, duplicate_window: nanos(this.opts.duplicateWindowSeconds * 1000) });
      this.log.info('created JetStream stream', { stream: this.opts.stream, subjects: `${this.opts.prefix}.>` });
    }
    const inbox = `${createInbox()}.`;
    const decoder = new TextDecoder();
    nc.subscribe(`${inbox}*`, {
      callback: (err, m) => {
        if (err) {
          // The subscription ended with an error: no ack can come on this connection. Its batches
          // fail now (not after 15 s), and the next one starts on a new connection.
          if (this.nc !== nc) return; // a connection already replaced
          this.inbox = '';
          return this.failWaiting(`the ack subscription ended: ${errorMessage(err)}`);
        }
        const w = this.waiting.get(Number(m.subject.slice(inbox.length)));
        if (!w) return; // a late ack of a batch that already failed: it is published again, deduplicated by id
        const h = m.headers;
        if (h?.hasError) return w.done(Object.assign(new Error(`${h.code} ${h.description}`), { noResponders: h.code === 503 }));
        let ack: { stream?: unknown; seq?: unknown; error?: { description?: string; err_code?: number; code?: number } };
        try {
          ack = JSON.parse(decoder.decode(m.data));
        } catch {
          return w.done(new Error('an answer on the ack subject that is not JSON'));
        }
        if (ack.error) return w.done(new Error(`${ack.error.description ?? 'error'} (${ack.error.err_code ?? ack.error.code ?? '?'})`));
        if (ack.stream !== this.opts.stream || typeof ack.seq !== 'number') return w.done(new Error(`an ack that is not from stream ${this.opts.stream}`));
        if (--w.left === 0) w.done();
      },
    });
    this.inbox = inbox;
    return nc;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    let msgs = batch.messages();
    let nc: NatsConnection;
    try {
      nc = await this.ready();
    } catch (err) {
      await this.reset();
      this.verify = true;
      throw new DeliveryError(`NATS: ${errorMessage(err)}`, undefined, { cause: err });
    }
    if (this.verify) {
      try {
        msgs = await this.skipPublished(msgs);
      } catch (err) {
        throw new DeliveryError(`JetStream lookup failed: ${errorMessage(err)}`, undefined, { cause: err });
      }
    }
    if (msgs.length === 0) return void (this.verify = false);
    const { headers } = await import('nats');
    const no = ++this.batchNo;
    const acked = new Promise<void>((resolve, reject) => {
      const w: Waiting = {
        left: msgs.length,
        done: (err) => {
          clearTimeout(timer);
          this.waiting.delete(no);
          if (err) reject(err);
          else resolve();
        },
      };
      const timer = setTimeout(() => w.done(new Error(`no ack for ${w.left} of ${msgs.length} message(s) within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
      this.waiting.set(no, w);
    });
    const reply = `${this.inbox}${no}`;
    try {
      for (const m of msgs) {
        const h = headers();
        h.set('Nats-Msg-Id', m.id);
        h.set('Edgectl-Content-Type', m.contentType);
        h.set('Edgectl-Time', new Date(m.ts).toISOString());
        nc.publish(`${this.opts.prefix}.${m.tenant}.${m.topic}`, m.body, { reply, headers: h });
      }
    } catch (err) {
      this.waiting.get(no)?.done(err instanceof Error ? err : new Error(String(err)));
    }
    try {
      await acked;
    } catch (err) {
      this.verify = true;
      if ((err as { noResponders?: boolean }).noResponders) {
        // No responders: no stream takes these subjects (deleted, or edited, since we checked).
        // Start again from the connection, which checks the stream and creates it if missing.
        await this.reset();
        throw new DeliveryError(`JetStream publish failed: no stream takes subjects ${this.opts.prefix}.> (503 no responders); stream ${this.opts.stream} is checked again on the next try`);
      }
      throw new DeliveryError(`JetStream publish failed: ${errorMessage(err)}`);
    }
    this.verify = false;
  }

  /**
   * Nats-Msg-Id dedupe only lasts the stream's duplicate window. A batch published just before a
   * crash (acked by JetStream, not yet deleted here) may be retried much later, so first ask the
   * stream for the last message of each subject: if it is in this batch, it and everything before
   * it (same subject, same order) are already there. Exact for one hub per subject.
   */
  private async skipPublished(msgs: SpoolMessage[]): Promise<SpoolMessage[]> {
    const jsm = await this.nc!.jetstreamManager();
    const bySubject = new Map<string, number[]>();
    msgs.forEach((m, i) => {
      const subj = `${this.opts.prefix}.${m.tenant}.${m.topic}`;
      bySubject.set(subj, [...(bySubject.get(subj) ?? []), i]);
    });
    const skip = new Set<number>();
    for (const [subj, idx] of bySubject) {
      let last: string | undefined;
      try {
        last = (await jsm.streams.getMessage(this.opts.stream, { last_by_subj: subj })).header?.get('Nats-Msg-Id');
      } catch (err) {
        if (/no message found|not found/i.test(errorMessage(err))) continue;
        throw err;
      }
      const pos = idx.findIndex((i) => msgs[i].id === last);
      for (const i of idx.slice(0, pos + 1)) skip.add(i);
    }
    if (skip.size > 0) this.log.info('skipping messages already in JetStream', { count: skip.size });
    return msgs.filter((_, i) => !skip.has(i));
  }

  private async reset(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.inbox = '';
    this.failWaiting('the NATS connection was closed');
    await nc?.close().catch(() => {});
  }

  private failWaiting(why: string): void {
    for (const w of [...this.waiting.values()]) w.done(new Error(why));
  }

  async close(): Promise<void> {
    await this.nc?.drain().catch(() => {});
    await this.reset();
  }
}
