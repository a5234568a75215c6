import type { AgentContext } from '../context.js';
import { Meter } from './meter.js';

export { Meter, METER_META, type MeterState } from './meter.js';

/** Rotation size when agent.json does not say: with one rotated file, the log takes at most about twice this. */
export const DEFAULT_ROTATE_BYTES = 64 << 20;

const meters = new WeakMap<AgentContext, Meter | null>();

/** The agent's meter, built from agent.json's metering section on first use; null when it has none. */
export function meterOf(ctx: AgentContext): Meter | null {
  let m = meters.get(ctx);
  if (m === undefined) {
    const c = ctx.config.metering;
    m = c ? new Meter(ctx.spool, {
      node: ctx.config.node,
      accessLog: c.accessLog ? { path: c.accessLog, pidFile: c.nginxPidFile ?? `${c.root}/run/nginx.pid`, rotateBytes: c.rotateBytes ?? DEFAULT_ROTATE_BYTES } : undefined,
      httpq: c.httpq ?? true,
      graceMs: (c.graceSeconds ?? 5) * 1000,
    }, ctx.log) : null;
    meters.set(ctx, m);
  }
  return m;
}

/** One metering step for the agent's maintenance loop: true when usage messages were stored (wake the forwarder). */
export async function meterStep(ctx: AgentContext, now: number): Promise<boolean> {
  const m = meterOf(ctx);
  return m ? (await m.tick(now)) > 0 : false;
}
