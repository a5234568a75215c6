import { connect } from 'nats';

export interface StreamMsg {
  subject: string;
  id: string;
  body: string;
}

/** Every message of a JetStream stream, in stream order (ordered consumer). */
export async function readStream(stream: string): Promise<StreamMsg[]> {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  try {
    const jsm = await nc.jetstreamManager();
    const total = (await jsm.streams.info(stream)).state.messages;
    const out: StreamMsg[] = [];
    if (total === 0) return out;
    const c = await nc.jetstream().consumers.get(stream);
    const msgs = await c.consume({ max_messages: 1000 });
    for await (const m of msgs) {
      out.push({ subject: m.subject, id: m.headers?.get('Nats-Msg-Id') ?? '', body: m.string() });
      if (out.length >= total) break;
    }
    await msgs.close();
    return out;
  } finally {
    await nc.close();
  }
}

export async function deleteStream(stream: string): Promise<void> {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  try {
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => false);
  } finally {
    await nc.close();
  }
}
