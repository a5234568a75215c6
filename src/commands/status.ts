import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { colorsFor, json, tableOf } from '../cli/output.js';
import { fleetDeps, targetFlags } from '../cli/fleet-flags.js';
import type { StatusReport } from '../lib/status/types.js';

/** Erase the terminal line (progress) and the whole screen (--watch redraws). */
const CLEAR_LINE = '\r\x1b[K';
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export default class Status extends EdgectlCommand {
  static override summary = 'Show every node at a glance: reachable, releases, nginx, agent, spool, disk, load';
  static override description = `One row per node, asked live in one round trip per node (one exec over its SSH connection,
relays and tunnels included): how it is reached, its current and good release with their commits
(and "+N in git" when the fleet's HEAD is N commits ahead), nginx's master pid and workers, the
agent (version, uptime; asked on the node's loopback admin API with the admin token read on the
node, which never leaves it), its spool (depth, bytes, oldest age, dropped, quarantined), last
forward, FastCGI apps and tunnel when the agent reports them, disk free under the root, load.
A node that cannot be reached is a row too, with why.

--from-hub answers from the last heartbeats stored at the hub (table edgectl_heartbeats_latest of
--hub-db or EDGECTL_HUB_DB) without connecting to any node: a node not heard from for
--stale-after seconds, or never, counts as unreachable ("last seen 3 h ago").

--watch redraws every --interval seconds until interrupted (Ctrl-C); with --json it prints one
JSON object per line per round.

Exit status: 0 every node healthy, 2 some degraded (no release, current not good, nginx down or
serving another config than current's, agent down, a store quarantined, a FastCGI app or the
tunnel not up, disk almost full) and none unreachable, 1 an error or any node unreachable (or its
answer refused).`;
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status bj-edge-01 --json',
    '<%= config.bin %> status --selector region=north --watch --interval 10',
    '<%= config.bin %> status --from-hub --hub-db postgres://edgectl@hub.example/edgectl',
  ];
  static override strict = false;
  static override args = { node: Args.string({ description: 'Node names (default: every node)', required: false }) };
  static override flags = {
    ...targetFlags,
    json: Flags.boolean({ summary: 'Print one JSON object: nodes and summary' }),
    watch: Flags.boolean({ char: 'w', summary: 'Redraw every --interval seconds until interrupted' }),
    interval: Flags.integer({ summary: 'With --watch: seconds between rounds', default: 5, min: 1, max: 86_400 }),
    'from-hub': Flags.boolean({ summary: 'Answer from the last heartbeats stored at the hub instead of connecting' }),
    'hub-db': Flags.string({ summary: 'With --from-hub: the hub\'s PostgreSQL URL', env: 'EDGECTL_HUB_DB', helpValue: 'URL' }),
    'stale-after': Flags.integer({ summary: 'With --from-hub: a heartbeat older than this many seconds counts as unreachable', default: 300, min: 1 }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Status);
    const { EdgectlError, errorMessage } = await import('../lib/errors.js');
    const { statusExitCode } = await import('../lib/status/types.js');
    const { deps, target } = await fleetDeps(flags, this.config.version);
    const nodes = [...(target.nodes ?? []), ...(argv as string[])];
    if (flags['from-hub'] && !flags['hub-db']) throw new EdgectlError('EDGECTL_USAGE', '--from-hub needs --hub-db URL (or EDGECTL_HUB_DB)');
    const tty = Boolean(process.stderr.isTTY);
    const once = async (): Promise<StatusReport> => {
      if (flags['from-hub']) {
        const { statusFromHub } = await import('../lib/status/hub.js');
        return statusFromHub({ ...target, nodes, db: flags['hub-db']!, staleSeconds: flags['stale-after'], now: deps.now });
      }
      const { statusFleet } = await import('../lib/status/fleet.js');
      let done = 0;
      const progress = tty ? () => process.stderr.write(`${CLEAR_LINE}status: ${++done} node(s) answered`) : undefined;
      try {
        return await statusFleet(deps, { ...target, nodes, onResult: progress });
      } finally {
        if (tty && done > 0) process.stderr.write(CLEAR_LINE);
      }
    };
    const show = async (r: StatusReport, redraw: boolean) => {
      const { statusTable, statusSummaryLine } = await import('../lib/output/status-table.js');
      if (flags.json) return this.out(flags.watch ? JSON.stringify(r) : json(r));
      const screen = redraw && process.stdout.isTTY ? CLEAR_SCREEN : '';
      const footer = flags.watch ? `\n${colorsFor(process.stdout).dim(`${r.at}, every ${flags.interval}s (Ctrl-C to stop)`)}` : '';
      this.out(`${screen}${tableOf(statusTable(r, colorsFor(process.stdout)))}\n${statusSummaryLine(r)}${footer}${redraw && !screen ? '\n' : ''}`);
    };
    if (!flags.watch) {
      const r = await once();
      await show(r, false);
      return this.setExit(statusExitCode(r.summary));
    }
    const { watchLoop } = await import('../lib/status/watch.js');
    const stop = new AbortController();
    const interrupt = () => stop.abort();
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    try {
      const failed = (e: unknown) => {
        const coded = e instanceof EdgectlError ? e : new EdgectlError('EDGECTL_INTERNAL', errorMessage(e));
        this.err(`error ${coded.message} [${coded.code}]${coded.hint ? `\nhint: ${coded.hint}` : ''}`);
        this.setExit(1);
      };
      await watchLoop({ intervalMs: flags.interval * 1000, round: once, show: (r) => show(r, true), exit: (r) => this.setExit(statusExitCode(r.summary)), failed, signal: stop.signal });
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
  }
}
