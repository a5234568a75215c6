import { Flags } from '@oclif/core';
import path from 'node:path';
import { EdgectlCommand } from '../cli/base.js';
import { ageIdentityFlag, targetFlags } from '../cli/fleet-flags.js';
import { stderrLogger } from '../cli/logger.js';
import { colorsFor, json, table } from '../cli/output.js';
import { EdgectlError } from '../lib/errors.js';

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
    'age-identity': ageIdentityFlag(),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Render);
    const { parseSelector } = await import('../cli/fleet-flags.js');
    const { renderToDir } = await import('../lib/render/to-dir.js');
    const view = await import('../lib/output/render-summary.js');
    const out = flags.out ?? path.join(flags.fleet, '.edgectl', 'render');
    const r = await renderToDir({ fleet: flags.fleet, rev: flags.rev, nodes: flags.node, selector: parseSelector(flags.selector), out, check: flags.check, ageIdentity: flags['age-identity'], edgectlVersion: this.config.version, logger: stderrLogger({ progress: true }) });
    const nodes = view.renderedNodes(r.bundles, r.model);
    const failed = r.check?.results.filter((x) => !x.ok) ?? [];
    const o = colorsFor(process.stdout);
    if (flags.json) {
      const check = r.check && { nginx: r.check.results.filter((x) => x.tool === 'nginx').length, deck: r.check.deckMissing ? 'not installed' : r.check.results.filter((x) => x.tool === 'deck').length, failed };
      this.out(json({ fleet: r.model.name, commit: r.model.commit ?? null, dirty: r.model.dirty, out: path.resolve(out), ms: r.ms, nodes, ...(check ? { check } : {}) }));
    } else {
      const t = view.renderTable(nodes);
      if (t) this.out(table(t.head, t.rows));
      this.out(view.renderedLine(nodes, out, r.ms, r.model.dirty, o));
    }
    for (const f of failed) this.err(`${colorsFor(process.stderr).red('check failed')} ${f.node}: ${f.tool}\n${f.output}`);
    if (failed.length > 0) throw new EdgectlError('EDGECTL_CHECK_FAILED', `${failed.length} check(s) failed on ${new Set(failed.map((f) => f.node)).size} node(s)`);
    if (flags.check && !flags.json) this.out(`${o.green('checked')} nginx -t and deck validate passed`);
  }
}
