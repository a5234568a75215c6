import type { UpstreamTls } from '../tls-hop/hop-tls.js';

/** Counters the agent keeps in memory for /status and /metrics (the spool keeps its own on disk). */
export class AgentStats {
  readonly startedAt = Date.now();
  readonly responses = new Map<number, number>();
  forwardedMessages = 0;
  forwardedBatches = 0;
  forwardErrors = 0;
  lastForwardAt?: number;
  lastForwardTo?: string;
  lastForwardError?: { at: string; message: string };
  /** https:// upstreams: what the last attempt found of the next hop's certificate. */
  upstreamTls?: UpstreamTls;
  receivedForwarded = 0;
  duplicatesDropped = 0;

  response(code: number): void {
    this.responses.set(code, (this.responses.get(code) ?? 0) + 1);
  }
}
