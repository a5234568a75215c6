import type { AgentConfig } from '../bundle/agent-json.js';
import { EdgectlError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { Agent } from './agent.js';

/**
 * The agent's lifetime: open the store, listen, and close cleanly once `stopped` resolves (the
 * command resolves it on SIGTERM/SIGINT). A port it cannot bind closes the store again first.
 */
export async function serveAgent(config: AgentConfig, log: Logger, stopped: Promise<void>): Promise<void> {
  const agent = await Agent.create(config, log);
  try {
    await agent.listen();
  } catch (err) {
    await agent.close();
    throw new EdgectlError('EDGECTL_AGENT_CONFIG', `cannot listen: ${errorMessage(err)}`);
  }
  await stopped;
  log.info('stopping', {});
  await agent.close();
}
