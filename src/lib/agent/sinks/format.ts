import { isUtf8 } from 'node:buffer';
import type { SpoolMessage } from '../store/record.js';

export interface SinkRecord {
  id: string;
  tenant: string;
  topic: string;
  contentType: string;
  /** ISO time the first hop accepted it. */
  time: string;
  /** "utf8": body is the text; "base64": body is the bytes in base64. */
  encoding: 'utf8' | 'base64';
  body: string;
}

export function sinkRecord(m: SpoolMessage): SinkRecord {
  const text = isUtf8(m.body);
  return {
    id: m.id, tenant: m.tenant, topic: m.topic, contentType: m.contentType, time: new Date(m.ts).toISOString(),
    encoding: text ? 'utf8' : 'base64', body: m.body.toString(text ? 'utf8' : 'base64'),
  };
}

/** A batch as NDJSON: one sink record per line (what the file and webhook sinks write). */
export function sinkLines(msgs: SpoolMessage[]): string {
  let out = '';
  for (const m of msgs) out += JSON.stringify(sinkRecord(m)) + '\n';
  return out;
}
