import type { SpoolCore } from './core.js';
import { messageKey, queueEnd } from './keys.js';
import { recordTime } from './record.js';
import { closeIterator } from './iter.js';

export interface QueueStatus {
  tenant: string;
  topic: string;
  depth: number;
  bytes: number;
  dropped: number;
  expired: number;
  purged: number;
  corrupt: number;
  oldestAgeSeconds: number | null;
}

/** Every queue's counters, and the age of its oldest message (one seek from its cursor). */
export async function queueStatus(core: SpoolCore, now = Date.now()): Promise<QueueStatus[]> {
  const out: QueueStatus[] = [];
  for (const q of core.counters.queues.values()) {
    let oldest: number | null = null;
    if (q.c.count > 0 && core.state === 'open') {
      const end = queueEnd(q.name);
      const it = core.db.iterator({ gte: messageKey(q.prefix, q.c.head), lt: end, limit: 1 });
      try {
        const [first] = await it.nextv(1);
        const ts = first ? recordTime(first[1]) : undefined;
        if (ts !== undefined) oldest = Math.max(0, (now - ts) / 1000);
      } finally {
        await closeIterator(it, end);
      }
    }
    const c = q.c;
    out.push({ tenant: q.tenant, topic: q.topic, depth: c.count, bytes: c.bytes, dropped: c.dropped, expired: c.expired, purged: c.purged, corrupt: c.corrupt, oldestAgeSeconds: oldest });
  }
  return out.sort((a, b) => (a.tenant + a.topic).localeCompare(b.tenant + b.topic));
}
