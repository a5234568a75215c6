/**
 * Body limits every hop agrees on, whatever each node's own settings (a hop must never refuse
 * what the one below may send). A leaf below every folder: the fleet schema bounds
 * agent.maxMessageBytes by these figures, and so do the agent.json contract
 * (bundle/agent-json.ts), nginx's config and the agent itself.
 */
export const MAX_MESSAGE_BYTES = 64 << 20;
export const MAX_FORWARD_BATCH_BYTES = 16 << 20;
export const MAX_FORWARD_BATCH_MESSAGES = 10_000;
/**
 * The largest POST /v1/forward body: a batch holds records up to its byte bound, or one record
 * alone when that record is larger (a message of up to MAX_MESSAGE_BYTES), plus its JSON header
 * (at most MAX_FORWARD_BATCH_MESSAGES rows of a few hundred bytes). Agents and nginx both use it.
 */
export const MAX_FORWARD_BODY_BYTES = Math.max(MAX_MESSAGE_BYTES, MAX_FORWARD_BATCH_BYTES) + (4 << 20);
/**
 * Default bound on the bytes of /v1/forward bodies a hop holds at once (a larger body is taken
 * alone). Storing a body costs about five times its size in memory at its peak (the record,
 * LevelDB's batch, memtable and table blocks), so this is what bounds a hop's memory under load.
 */
export const DEFAULT_FORWARD_INFLIGHT_BYTES = 32 << 20;

/** The largest NDJSON batch an agent takes when agent.json does not say (nginx's /v1/q/ limit too). */
export const defaultMaxBatchBytes = (maxMessageBytes: number) => Math.max(maxMessageBytes, 8 << 20);
