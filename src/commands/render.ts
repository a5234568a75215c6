import { Flags } from '@oclif/core';
import path from 'node:path';
import { EdgectlCommand } from '../cli/base.js';
import { targetFlags } from '../cli/fleet-flags.js';
import { colorsFor, json, table } from '../cli/output.js';
import { EdgectlError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

export default class Render extends EdgectlCommand {
  static override summary = 'Render each node\'s bundle: nginx, Kong and agent config, app payloads, manifest';
  static override description = `Writes one bundle per node to <out>/<node>/ (default out: .edgectl/render/ inside the fleet), replacing
files of an earlier render. Rendering is deterministic: the same fleet commit and edgectl version give
byte-identical bundles. Templates come from templates/ of edgectl; a fleet adds allow-listed nginx
snippets (templates/nginx/http.d/*.conf, templates/nginx/server.d/*.conf) and may replace mime.types.

--check runs \`nginx -t\` on every rendered bundle (in a temporary prefix, as on a node) and \`deck validate\`
on every kong.yml (when decK is installed), and prints the tool's own output for each failure.

Exit status: 0 rendered (and checked), 1 invalid fleet, render error or failed check.`;
  static override examples = [
    '<%= config.bin %> render --fleet fleet.example',
    '<%= config.bin %> render --node bj-edge-01 --check',
    '<%= config.bin %> render --selector region=north --out /tmp/bundles --json',
    '<%= config.bin %> render --rev HEAD~1 --out /tmp/previous',
  ];
  static override flags = {
    fleet: targetFlags.fleet,
    rev: Flags.string({ summary: 'Render the fleet as of this git revision (no checkout needed)' }),
    node: targetFlags.node,
    selector: targetFlags.selector,
    out: Flags.string({ char: 'o', summary: 'Output directory (default: <fleet>/.edgectl/render)' }),
    check: Flags.boolean({ summary: 'Run nginx -t and deck validate on the rendered bundles' }),
    json: Flags.boolean({ summary: 'Print a JSON summary' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Render);
    const { parseSelectorFlags } = await import('../lib/fleet/selector.js');
    const { loadFleet } = await import('../lib/fleet/load.js');
    const { renderFleet, BundleWriter } = await import('../lib/render/index.js');
    const selector = parseSelectorFlags(flags.selector);
    if (typeof selector === 'string') throw new EdgectlError('EDGECTL_USAGE', selector);
    const c = colorsFor(process.stderr);
    const logger: Logger = {
      debug() {},
      info: (msg) => this.err(c.dim(msg)),
      warn: (msg) => this.err(`${c.yellow('warning')} ${msg}`),
      error: (msg) => this.err(`${c.red('error')} ${msg}`),
    };
    const out = flags.out ?? path.join(flags.fleet, '.edgectl', 'render');
    const loaded = await loadFleet(flags.fleet, flags.rev);
    const started = performance.now();
    // Bundles are written on a worker thread as they are rendered.
    const writer = new BundleWriter(out, { fleetRoot: flags.fleet });
    let bundles;
    try {
      bundles = await renderFleet(loaded, { nodes: flags.node, selector, edgectlVersion: this.config.version, logger, onBundle: (b) => writer.add(b) });
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await writer.close();
    const ms = Math.round(performance.now() - started);
    const roles = new Map(loaded.model.nodes.map((n) => [n.name, n.spec.role]));
    const summary = bundles.map((b) => ({
      node: b.node,
      role: roles.get(b.node),
      apps: Object.keys(b.manifest.files).filter((f) => f.startsWith('nginx/conf.d/')).length,
      files: Object.keys(b.manifest.files).length + 1,
      digest: b.manifest.digest,
      nginxConfigId: b.manifest.nginxConfigId,
    }));
    let failed: { node: string; tool: string; output: string }[] = [];
    let checks: unknown;
    if (flags.check) {
      const { checkBundles } = await import('../lib/render/check.js');
      const r = await checkBundles(out, bundles.map((b) => b.node), { logger });
      failed = r.results.filter((x) => !x.ok);
      checks = { nginx: r.results.filter((x) => x.tool === 'nginx').length, deck: r.deckMissing ? 'not installed' : r.results.filter((x) => x.tool === 'deck').length, failed };
    }
    if (flags.json) {
      this.out(json({ fleet: loaded.model.name, commit: loaded.model.commit ?? null, dirty: loaded.model.dirty, out: path.resolve(out), ms, nodes: summary, ...(flags.check ? { check: checks } : {}) }));
    } else {
      const o = colorsFor(process.stdout);
      if (summary.length <= 100) {
        this.out(table(['node', 'role', 'apps', 'files', 'digest'], summary.map((s) => [s.node, s.role ?? '', s.apps, s.files, s.digest.slice(0, 20)])));
      }
      this.out(`${o.green('rendered')} ${summary.length} bundle(s) to ${out} in ${ms} ms${loaded.model.dirty ? o.yellow(' (fleet has uncommitted changes)') : ''}`);
    }
    for (const f of failed) this.err(`${c.red('check failed')} ${f.node}: ${f.tool}\n${f.output}`);
    if (failed.length > 0) throw new EdgectlError('EDGECTL_CHECK_FAILED', `${failed.length} check(s) failed on ${new Set(failed.map((f) => f.node)).size} node(s)`);
    if (flags.check && !flags.json) this.out(`${colorsFor(process.stdout).green('checked')} nginx -t and deck validate passed`);
  }
}
