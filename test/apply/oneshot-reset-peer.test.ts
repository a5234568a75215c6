import { createServer, type Server, type Socket } from 'node:net';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ONESHOT_SCRIPT } from '../../src/lib/release/scripts-oneshot.js';

/**
 * The one-shot activation asks nginx (its probe) and the agent (its /healthz gate) over bash's
 * /dev/tcp. A server that is closing as it reloads resets connections it had accepted; a write
 * to such a socket raised SIGPIPE, which ended the whole activation with exit 141 and no
 * outcome (seen in CI: an agent re-created on SIGHUP). A reset is one failed try: the gate goes
 * on and passes when the server answers. Runs the script's own functions, in real bash, against
 * a real socket server that resets its first connections.
 */
function fn(name: string): string {
  const m = new RegExp(`^${name}\\(\\) \\{[\\s\\S]*?\\n\\}\\n`, 'm').exec(ONESHOT_SCRIPT);
  if (!m) throw new Error(`no ${name}() in the one-shot script`);
  // The script is a JS template literal's result already: its text is what bash runs.
  return m[0];
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** Resets the first `resets` connections as soon as they are accepted, then answers like the agent. */
function resettingAgent(resets: number, body: string): Promise<number> {
  let n = 0;
  server = createServer((c: Socket) => {
    n++;
    if (n <= resets) return void c.resetAndDestroy();
    c.once('data', () => c.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`));
  });
  return new Promise((r) => server!.listen(0, '127.0.0.1', () => r((server!.address() as { port: number }).port)));
}

describe('one-shot activation against a peer that resets connections', () => {
  it('the agent gate counts each reset as a failed try and passes once /healthz answers with the digest (no exit 141)', async () => {
    const port = await resettingAgent(300, '{"ok":true,"config":"d1g"}');
    // sleep 0.25 between tries in the gate: a fast loop here, so that hundreds of resets are tried.
    const script = [fn('send'), fn('agent_runs').replace('sleep 0.25', ':'), `ah=127.0.0.1 ap=${port}`, 'agent_runs d1g 20 && echo passed'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('passed');
    expect(r.stderr, 'a reset is not an error message on the activation\'s stderr').toBe('');
  });

  it('and a gate whose agent never answers with the digest still fails (exit 1, not 141)', async () => {
    const port = await resettingAgent(50, '{"ok":true,"config":"other"}');
    const script = [fn('send'), fn('agent_runs').replace('sleep 0.25', 'sleep 0.01'), `ah=127.0.0.1 ap=${port}`, 'agent_runs d1g 2; echo "rc=$?"'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('rc=1');
  });

  it('the nginx probe: a reset is "no answer", then the status and body of the answer', async () => {
    const port = await resettingAgent(300, 'cfg-id\n');
    const script = [fn('send'), fn('probe'), `ph=127.0.0.1 pp=${port}`, 'for i in $(seq 400); do probe x /.edgectl/config && break; done; echo "try=$i ps=$ps pb=${pb%%$\'\\n\'*}"'].join('\n');
    const r = await execa('bash', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('try=301 ps=200 pb=cfg-id');
  });
});
