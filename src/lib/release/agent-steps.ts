import { createHash } from 'node:crypto';
import type { Transport } from '../transport/types.js';
import { NodeStepError, runScript } from './remote.js';

/**
 * The node's agent on apply's step-by-step path (activate.ts), the same contract as the
 * one-shot's `step agent` (scripts-oneshot.ts): when the release changes agent.json and
 * bootstrap's service runs an agent from this root, it gets SIGHUP and must answer /healthz ok
 * with the new agent.json's digest in `config` within 15 s, else the release is reverted (and the
 * agent HUPed again, back on the previous agent.json). Each call here is one exec or one HTTP
 * request through the transport: no bash, no curl needed on the node.
 */
export const AGENT_GATE_S = 15;
const AGENT_BACK_S = 10;

/**
 * $1 root, $2 hup|find. Prints "agent PID" when run/agent.pid names a live process whose command
 * line says edgectl (a pid reused after a reboot gets no signal), and with hup sends it SIGHUP.
 */
const AGENT_HUP_SCRIPT = `
p=; IFS= read -r p <"$1/run/agent.pid" 2>/dev/null || exit 0
case "$p" in ''|*[!0-9]*) exit 0;; esac
kill -0 "$p" 2>/dev/null || exit 0
tr '\\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q edgectl || exit 0
if [ "$2" = hup ]; then kill -HUP "$p" || exit 0; fi
echo "agent $p"
`;

/** The pid of the agent running from this root (after sending it SIGHUP when asked), or undefined. */
export async function agentOnNode(t: Transport, root: string, hup: boolean): Promise<number | undefined> {
  const r = await runScript(t, AGENT_HUP_SCRIPT, [root, hup ? 'hup' : 'find'], { timeoutMs: 15_000 });
  const m = /^agent (\d+)$/m.exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

export interface AgentConf {
  /** sha256 hex of the agent.json bytes: what /healthz reports as `config` once the agent runs them. */
  digest: string;
  /** Where its /healthz answers, as seen from the node (a wildcard listen is asked on loopback); undefined: no TCP listener. */
  host?: string;
  port?: number;
}

/** What an agent.json's bytes say about the agent they configure. A file that does not parse has no listener. */
export function agentConf(bytes: Buffer): AgentConf {
  const digest = createHash('sha256').update(bytes).digest('hex');
  let listen: unknown;
  try {
    listen = (JSON.parse(bytes.toString('utf8')) as { listen?: unknown }).listen;
  } catch {
    return { digest };
  }
  const m = typeof listen === 'string' ? /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]{2,39}\]):(\d{1,5})$/.exec(listen) : null;
  if (!m) return { digest };
  let host = m[1].replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return { digest, host, port: Number(m[2]) };
}

/** Polls the agent's /healthz until it answers ok with `config` = the digest, bounded by the clock. */
export async function agentRuns(t: Transport, c: AgentConf, seconds: number): Promise<{ ok: boolean; seen?: string }> {
  const deadline = Date.now() + seconds * 1000;
  let seen: string | undefined;
  while (Date.now() < deadline) {
    if (c.host && c.port) {
      try {
        const res = await t.http({ host: c.host, port: c.port, method: 'GET', path: '/healthz', headers: { host: 'localhost' }, timeoutMs: Math.max(500, Math.min(2000, deadline - Date.now())) });
        const body = JSON.parse(res.body.toString('utf8')) as { ok?: unknown; config?: unknown };
        seen = `${res.status} ok=${String(body.ok)} config=${String(body.config)}`;
        if (body.ok === true && body.config === c.digest) return { ok: true, seen };
      } catch (e) {
        seen = `no answer (${e instanceof Error ? e.message : String(e)})`;
      }
    } else {
      seen = 'agent.json names no TCP listener';
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { ok: false, seen };
}

/** HUP the agent and wait for it to run the new agent.json; throws a step error (the caller reverts) when it does not. */
export async function reloadAgent(t: Transport, root: string, c: AgentConf): Promise<boolean> {
  const pid = await agentOnNode(t, root, true);
  if (pid === undefined) return false;
  const r = await agentRuns(t, c, AGENT_GATE_S);
  if (!r.ok) throw new NodeStepError(`the agent did not come up with the new agent.json (no /healthz ok with its digest within ${AGENT_GATE_S} s)`, `agent pid ${pid}, expected config ${c.digest}, last /healthz: ${r.seen ?? 'none'}`);
  return true;
}

/** After a revert: HUP the agent back onto the previous release's agent.json; a note when it does not take it. */
export async function agentBack(t: Transport, root: string, prevAgentJson: Buffer | undefined): Promise<string | undefined> {
  const pid = await agentOnNode(t, root, true);
  if (pid === undefined || !prevAgentJson) return undefined;
  const r = await agentRuns(t, agentConf(prevAgentJson), AGENT_BACK_S);
  return r.ok ? undefined : `the agent did not come back on the previous release's agent.json (last /healthz: ${r.seen ?? 'none'})`;
}
