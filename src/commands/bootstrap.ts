import { Args, Flags } from '@oclif/core';
import { EdgectlCommand } from '../cli/base.js';
import { ageIdentityFlag, parseSelector } from '../cli/fleet-flags.js';
import { stderrLogger } from '../cli/logger.js';
import { colorsFor, json, table } from '../cli/output.js';
import { EdgectlError } from '../lib/errors.js';

export default class Bootstrap extends EdgectlCommand {
  static override summary = 'Install the edgectl agent on nodes as a systemd service (edgectl-agent.service)';
  static override description = `For each NODE (or every node matching --selector), over the same SSH transport as apply: ships the
agent (one bundle plus the LevelDB addon for the node's architecture) to <root>/agent/<version>/
and swaps <root>/agent/current to it (the previous version is kept), creates the node's forwarding
credential on the node (only its sha256 leaves it, written into the node's fleet file as
spec.credential.sha256: a change to review and commit; --no-record only prints it), installs
edgectl-agent.service, enables and (re)starts it. The agent runs with the node's own Node.js >= 20,
or --runtime PATH on the node, else a copy of this machine's when the node's architecture and glibc
fit. A second run with nothing to change changes nothing. A tunnel: reverse node gets its tunnel key
made on the node (spec.tunnelKey recorded likewise; --rotate-tunnel-key makes a new one; a node
installed from a pack gets a new key and credential at its first bootstrap). A relay or core node of a fleet
with a CA (edgectl ca init) gets its hop key made on the node (<root>/secrets/hop-key.pem) and its hop
certificate signed with the fleet CA (decrypted with --age-identity) into tls/hops/NODE.pem, to commit;
a valid one is kept. If the CA key cannot be decrypted the node is still installed and bootstrap exits 1.
--pack NODE --out FILE writes an offline installer for a node nobody can reach instead (no connection).
See docs/bootstrap.md.

Exit status: 0 every node installed or unchanged, 1 any node failed or rolled back, or a
credential or hop certificate could not be written into the fleet.`;
  static override examples = ['<%= config.bin %> bootstrap bj-edge-01 --fleet fleet --yes', '<%= config.bin %> bootstrap --pack bj-edge-04 --out /media/usb/bj-edge-04.tgz --fleet fleet', '<%= config.bin %> bootstrap --selector region=north --yes --json'];
  static override strict = false;
  static override args = { node: Args.string({ description: 'Node names (none: every node, or those matching --selector)' }) };
  static override flags = {
    fleet: Flags.string({ char: 'f', summary: 'Fleet repo directory', default: '.' }),
    selector: Flags.string({ char: 'l', summary: 'Only nodes with these labels, key=value (repeatable)', multiple: true }),
    identity: Flags.string({ char: 'i', summary: 'SSH private key file (repeatable)', multiple: true }),
    runtime: Flags.string({ summary: 'Node.js >= 20 binary on the node to run the agent with (default: the node\'s own node, else a copy of this machine\'s)', helpValue: 'PATH' }),
    concurrency: Flags.integer({ summary: 'Nodes handled in parallel', default: 16, min: 1, max: 1000 }),
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask (required when not on a terminal)' }),
    record: Flags.boolean({ summary: 'Write new credential hashes and tunnel keys into the fleet\'s node files', default: true, allowNo: true }),
    'rotate-tunnel-key': Flags.boolean({ summary: 'tunnel: reverse nodes: make a new tunnel key on the node (record it, commit, apply: the relay then refuses the old one)' }),
    pack: Flags.boolean({ summary: 'Write an offline installer for NODE (one tunnel: reverse node) to --out instead of connecting to it' }),
    out: Flags.string({ summary: 'With --pack: the installer to write (tar.gz, mode 0600, never inside the fleet repo)', helpValue: 'FILE' }),
    arch: Flags.string({ summary: 'With --pack: the node\'s architecture (uname -m; default this machine\'s)' }),
    'age-identity': ageIdentityFlag(),
    json: Flags.boolean({ summary: 'Print JSON' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Bootstrap);
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { bootstrapNodes } = await import('../lib/bootstrap/index.js');
    const { ensureConfirmed } = await import('../cli/confirm.js');
    const nodes = argv as string[];
    if (flags.pack) return this.pack(nodes, flags);
    if (flags.out || flags.arch) throw new EdgectlError('EDGECTL_USAGE', '--out and --arch go with --pack');
    const { model } = await loadFleet(flags.fleet);
    await ensureConfirmed({ yes: flags.yes, offTerminal: 'bootstrap installs a service on nodes and this is not a terminal', ask: () => `Install the edgectl agent on ${nodes.length ? nodes.join(', ') : 'the selected nodes'}?` });
    const { secretOpener } = await import('../lib/secrets/opener.js');
    const secrets = secretOpener({ flag: flags['age-identity'], env: process.env });
    const results = await bootstrapNodes({ secrets, model, fleetRoot: flags.fleet, selection: { nodes, selector: parseSelector(flags.selector) }, identity: flags.identity, runtime: flags.runtime, agentDist: process.env.EDGECTL_AGENT_DIST || undefined, concurrency: flags.concurrency, record: flags.record, rotateTunnelKey: flags['rotate-tunnel-key'], logger: stderrLogger() });
    this.setExit(results.every((r) => (r.status === 'installed' || r.status === 'unchanged') && !r.recordError && !r.hopCertError) ? 0 : 1);
    if (flags.json) return this.out(json({ format: 'edgectl-bootstrap/v1', nodes: results }));
    const c = colorsFor(process.stdout);
    const status = (s: string) => (s === 'installed' ? c.green(s) : s === 'unchanged' ? s : c.red(s));
    this.out(table(['node', 'status', 'agent', 'changed', 'credential sha256'], results.map((r) => [r.node, status(r.status), r.version ?? '-', r.changed.join(' ') || '-', r.credentialSha256 ?? '-'])));
    for (const r of results) if (r.tunnelKey && !r.tunnelKeyRecorded && !r.recordedIn && !r.recordError) this.err(`${r.node}: record its tunnel key in the fleet: spec.tunnelKey: "${r.tunnelKey} ${r.node}"`);
    for (const r of results) {
      if (r.error) this.err(`${c.red('error')} ${r.node}: ${r.error.message} [${r.error.code}]${r.error.hint ? `\n  hint: ${r.error.hint}` : ''}${r.error.output ? `\n${r.error.output}` : ''}`);
      if (r.recordError) this.err(`${c.red('error')} ${r.node}: ${r.recordError}`);
      else if (r.credentialSha256 && !r.credentialRecorded && !r.recordedIn) this.err(`${r.node}: record its credential in the fleet: spec.credential.sha256: ${r.credentialSha256}`);
    }
    for (const r of results) {
      if (r.hopCertError) this.err(`${c.red('error')} ${r.node}: its hop certificate was not issued: ${r.hopCertError}; the node is installed: bootstrap it again with an identity that can decrypt the fleet CA's key`);
      else if (r.hopCert?.outcome === 'issued') this.err(`${r.node}: issued its hop certificate ${r.hopCert.cert} for its own key (until ${r.hopCert.notAfter}): review and commit, then apply`);
      else if (r.hopPublicKey && !r.hopCert && flags.record === false) this.err(`${r.node}: its hop certificate was not checked (--no-record): bootstrap it again without --no-record`);
    }
    const files = [...new Set(results.flatMap((r) => (r.recordedIn ? [r.recordedIn] : [])))];
    if (files.length) this.err(`recorded ${results.filter((r) => r.recordedIn).length} node credential(s) or tunnel key(s) in ${files.join(', ')}: review and commit, then apply (the relays and the hub accept those nodes from then on)`);
  }

  private async pack(nodes: string[], flags: { fleet: string; out?: string; arch?: string; runtime?: string; record: boolean; json: boolean; selector?: string[] }): Promise<void> {
    if (nodes.length !== 1 || flags.selector) throw new EdgectlError('EDGECTL_USAGE', '--pack takes exactly one NODE (and no --selector)');
    if (!flags.out) throw new EdgectlError('EDGECTL_USAGE', '--pack needs --out FILE');
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { packNode } = await import('../lib/bootstrap/pack.js');
    const loaded = await loadFleet(flags.fleet);
    const r = await packNode({ loaded, fleetRoot: flags.fleet, node: nodes[0], out: flags.out, arch: flags.arch, runtime: flags.runtime, agentDist: process.env.EDGECTL_AGENT_DIST || undefined, edgectlVersion: this.config.version, record: flags.record });
    this.setExit(r.recordError ? 1 : 0);
    if (flags.json) return this.out(json(r));
    this.out(table(['node', 'out', 'bytes', 'arch', 'agent', 'tunnel key'], [[r.node, r.out, String(r.bytes), r.arch, r.agentVersion, r.tunnelKey]]));
    if (r.recordError) this.err(`error ${r.node}: ${r.recordError}`);
    else if (r.recordedIn) this.err(`recorded ${r.node}'s tunnel key and credential in ${r.recordedIn}: review and commit, then apply to its relay (it accepts the node from then on)`);
    else this.err(`${r.node}: record in the fleet: tunnelKey: "${r.tunnelKey} ${r.node}" and credential: { sha256: ${r.credentialSha256} }`);
    this.err(`${r.out} holds ${r.node}'s tunnel key and credential until its first bootstrap: keep it like a password, delete it once the node is installed`);
  }
}
