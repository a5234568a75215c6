import type { AgentConfig } from '../bundle/agent-json.js';
import { EdgectlError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { Agent } from './agent.js';
import { FastcgiSupervisor } from './fastcgi/supervisor.js';
import type { NodeRuntime, ReloadReport } from './node-runtime.js';

/** A configuration as read: parsed, and the sha256 of its bytes (null when it came from flags alone). */
export interface LoadedConfig {
  config: AgentConfig;
  digest: string | null;
}

export interface ServeOptions {
  log: Logger;
  /** Settles when the agent should stop (SIGTERM/SIGINT). */
  stopped: Promise<void>;
  /** Reads the configuration; called again on each reload. */
  load: () => Promise<LoadedConfig>;
  /** With a node root: the FastCGI apps are supervised (their sockets and pid files under <root>/run/fastcgi). */
  root?: string;
  /** Subscribes to reload requests (SIGHUP, forwarded by the entry point). */
  onReload?: (reload: () => void) => void;
  /** The agent build (bootstrap's version digest), shown in /healthz. */
  version?: string | null;
  /** Called once the HTTPQ agent listens. */
  onListening?: () => void | Promise<void>;
}

/**
 * The agent's lifetime: open the store, listen, and close cleanly once `stopped` resolves (the
 * command resolves it on SIGTERM/SIGINT). A port it cannot bind closes the store again first.
 */
export async function serveAgent(config: AgentConfig, log: Logger, stopped: Promise<void>): Promise<void> {
  await serveNode({ log, stopped, load: async () => ({ config, digest: null }) });
}

async function startAgent(config: AgentConfig, log: Logger, node: NodeRuntime): Promise<Agent> {
  const agent = await Agent.create(config, log, { node });
  try {
    await agent.listen();
  } catch (err) {
    await agent.close();
    throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot listen: ${errorMessage(err)}`);
  }
  return agent;
}

/** Everything but the FastCGI list: a change there alone needs no new HTTPQ agent. */
function agentPart(c: AgentConfig): string {
  const { fastcgi: _f, ...rest } = c;
  return JSON.stringify(rest);
}

/**
 * The agent process on a node: FastCGI apps first (nginx is up by then: the entry point ran
 * reset-to-work), then the HTTPQ agent. On a reload request the config is read again: FastCGI
 * apps are reconciled (only changed ones restart) and, when anything else changed, the Agent
 * is closed and created again in this process, FastCGI processes untouched. A config that does
 * not parse, or an agent that does not open with it, leaves the running one in force (the old
 * config is opened again if it had to be closed), logged and reported in /healthz and /status.
 */
export async function serveNode(o: ServeOptions): Promise<void> {
  const { log } = o;
  let current = await o.load();
  const node: NodeRuntime = { configDigest: current.digest, version: o.version ?? null, reload: null };
  const supervisor = o.root ? new FastcgiSupervisor({ runDir: `${o.root}/run/fastcgi`, appsDir: `${o.root}/current/apps`, nginxConf: `${o.root}/current/nginx/nginx.conf`, log }) : undefined;
  if (supervisor) {
    node.fastcgi = supervisor;
    await supervisor.apply(current.config.fastcgi);
  }
  let agent: Agent;
  try {
    agent = await startAgent(current.config, log, node);
  } catch (err) {
    await supervisor?.stop();
    throw err;
  }
  await o.onListening?.();

  const reload = async (): Promise<void> => {
    const at = new Date().toISOString();
    let next: LoadedConfig;
    try {
      next = await o.load();
    } catch (err) {
      return report({ at, outcome: 'failed', error: errorMessage(err) });
    }
    if (next.digest !== null && next.digest === current.digest) return report({ at, outcome: 'unchanged', config: next.digest });
    let recreated = false;
    if (agentPart(next.config) !== agentPart(current.config)) {
      await agent.close();
      try {
        agent = await startAgent(next.config, log, node);
        recreated = true;
      } catch (err) {
        agent = await startAgent(current.config, log, node); // what ran before: if even this fails, the process exits and systemd restarts it
        return report({ at, outcome: 'failed', config: next.digest, error: errorMessage(err) });
      }
    }
    const fastcgi = supervisor ? await supervisor.apply(next.config.fastcgi) : undefined;
    current = next;
    node.configDigest = next.digest;
    report({ at, outcome: 'applied', config: next.digest, agent: recreated ? 'recreated' : 'kept', ...(fastcgi ? { fastcgi } : {}) });
  };
  const report = (r: ReloadReport): void => {
    node.reload = r;
    if (r.outcome === 'failed') log.error('reload failed; the running configuration stays in force', { ...r });
    else log.info('reload', { ...r });
  };

  // One reload at a time; requests during one are folded into a single next one.
  let running: Promise<void> | undefined;
  let again = false;
  let fatal: unknown;
  const request = (): void => {
    if (running) return void (again = true);
    running = (async () => {
      do {
        again = false;
        await reload().catch((err) => (fatal = err));
      } while (again && fatal === undefined);
      running = undefined;
      if (fatal !== undefined) stopNow();
    })();
  };
  let stopNow: () => void = () => {};
  const broken = new Promise<void>((resolve) => (stopNow = resolve));
  o.onReload?.(request);

  await Promise.race([o.stopped, broken]);
  while (running) await running;
  log.info('stopping', {});
  await agent.close();
  await supervisor?.stop();
  if (fatal !== undefined) throw new EdgectlError('EDGECTL_AGENT_CONFIG', `the agent could not be opened again after a reload: ${errorMessage(fatal)}`);
}
