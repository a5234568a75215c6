import type { Deliverer } from '../forward/deliverer.js';
import type { Logger } from '../../logger.js';
import type { HttpClient } from '../../http-client.js';

/**
 * file:PATH | http(s)://… (POSTed through `http`) | nats://HOST:PORT[?stream=&prefix=&duplicateWindow=]
 * | postgres(ql)://USER[:PASSWORD]@HOST[:PORT]/DATABASE (migrated here, at hub start)
 */
export async function createSink(spec: string, log: Logger, http: HttpClient, batch: { batchMessages?: number; batchBytes?: number } = {}): Promise<Deliverer> {
  if (spec.startsWith('file:')) {
    const { FileSink } = await import('./file.js');
    const p = spec.slice(5);
    if (!p) throw new Error('file sink needs a path: file:/var/lib/edgectl/sink.jsonl');
    return new FileSink(p, batch);
  }
  if (/^https?:\/\//.test(spec)) {
    const { HttpSink } = await import('./http.js');
    return new HttpSink(spec, http);
  }
  if (spec.startsWith('nats://')) {
    const { NatsSink, parseNatsSink } = await import('./nats.js');
    return new NatsSink(parseNatsSink(spec), log);
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { PostgresSink, parsePostgresSink } = await import('./postgres.js');
    const sink = new PostgresSink(parsePostgresSink(spec), log);
    await sink.start();
    return sink;
  }
  const { redactSpec } = await import('./pg/redact.js');
  throw new Error(`unknown sink "${redactSpec(spec)}": use file:PATH, http(s)://…, nats://HOST:PORT or postgres://USER@HOST:PORT/DATABASE`);
}
