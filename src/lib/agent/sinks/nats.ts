import type { NatsConnection, JetStreamClient } from 'nats';
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

/**
 * JetStream: subject <prefix>.<tenant>.<topic>, Nats-Msg-Id = message id (JetStream drops
 * repeats within the duplicate window), and a batch counts as delivered only when every
 * publish has its JetStream ack. One connection keeps publish order per topic.
 */
export class NatsSink implements Deliverer {
  readonly name: string;
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  /** After start-up or a failed batch: check what already reached the stream before publishing again. */
  private verify = true;

  constructor(private opts: NatsSinkOptions, private log: Logger) {
    this.name = `nats:${opts.servers}/${opts.stream}`;
  }

  private async ready(): Promise<JetStreamClient> {
    if (this.js && this.nc && !this.nc.isClosed()) return this.js;
    const { connect, nanos, headers: _h, StorageType } = await import('nats');
    void _h;
    // noAsyncTraces: otherwise every publish builds two Errors up front (stack traces for a timeout
    // it may never report), which took half of the hub's CPU while draining a backlog.
    this.nc = await connect({ servers: this.opts.servers, maxReconnectAttempts: -1, reconnectTimeWait: 500, name: 'edgectl-hub', noAsyncTraces: true });
    const jsm = await this.nc.jetstreamManager();
    try {
      await jsm.streams.info(this.opts.stream);
    } catch {
      await jsm.streams.add({ name: this.opts.stream, subjects: [`${this.opts.prefix}.>`], storage: StorageType.File, duplicate_window: nanos(this.opts.duplicateWindowSeconds * 1000) });
      this.log.info('created JetStream stream', { stream: this.opts.stream, subjects: `${this.opts.prefix}.>` });
    }
    this.js = this.nc.jetstream();
    return this.js;
  }

  async deliver(batch: Pick<Batch, 'messages'>): Promise<void> {
    let msgs = batch.messages();
    let js: JetStreamClient;
    try {
      js = await this.ready();
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
    const { headers } = await import('nats');
    const acks = msgs.map((m) => {
      const h = headers();
      h.set('Edgectl-Content-Type', m.contentType);
      h.set('Edgectl-Time', new Date(m.ts).toISOString());
      return js.publish(`${this.opts.prefix}.${m.tenant}.${m.topic}`, m.body, { msgID: m.id, headers: h, timeout: 15_000 });
    });
    const results = await Promise.allSettled(acks);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      this.verify = true;
      const reason = (failed as PromiseRejectedResult).reason as { code?: string };
      if (reason?.code === '503') {
        // No responders: no stream takes these subjects (deleted, or edited, since we checked).
        // Start again from the connection, which checks the stream and creates it if missing.
        await this.reset();
        throw new DeliveryError(`JetStream publish failed: no stream takes subjects ${this.opts.prefix}.> (503 no responders); stream ${this.opts.stream} is checked again on the next try`);
      }
      throw new DeliveryError(`JetStream publish failed: ${errorMessage(reason)}`);
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
    this.js = undefined;
    await nc?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.nc?.drain().catch(() => {});
    await this.reset();
  }
}
