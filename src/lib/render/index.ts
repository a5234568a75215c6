import type { LoadedFleet } from '../fleet/load.js';
import { silentLogger, type Logger } from '../logger.js';
import type { Manifest } from '../bundle/manifest.js';
import { AgentRenderer } from './agent.js';
import { manifestBytes, type BundleFile } from '../bundle/manifest.js';
import { assembleBundle, type Bundle } from './bundle.js';
import { appsOnNode, renderContext, type RenderContext } from './context.js';
import { KongRenderer } from './kong.js';
import { NginxRenderer } from './nginx.js';
import { loadPayloads } from './payloads.js';
import { loadTemplates } from './templates.js';
import { selectNodes } from '../nodes/select.js';
import { assertNginxSafeOnce } from '../nginx/guard.js';
import { parseKnownHosts } from '../transport/known-hosts.js';
import { tunnelFiles } from './tunnel-keys.js';
import { loadAppTls } from './tls.js';
import { loadHopTls } from '../tls-hop/render.js';
import { secretOpener } from '../secrets/opener.js';
import { isTlsFilePath } from '../secrets/paths.js';
import type { SecretOpener } from '../secrets/opener.js';

export type { Bundle, BundleFile, Manifest };
export { manifestBytes };
export { writeBundles } from './write.js';
export { BundleWriter } from './write-pipeline.js';

export interface RenderOptions {
  /** Only these nodes (by name); unknown names are an error. */
  nodes?: string[];
  /** Only nodes whose labels match. */
  selector?: Record<string, string>;
  edgectlVersion: string;
  logger?: Logger;
  /** A context the caller already built for this model (plan needs it too): placement runs once. */
  context?: RenderContext;
  /** Called with each bundle as soon as it is rendered (render --out writes while rendering goes on). */
  onBundle?: (b: Bundle) => Promise<void> | void;
  /** Decrypts the fleet's secrets (TLS keys); default: the identity from EDGECTL_AGE_IDENTITY_FILE or the default file. */
  secrets?: SecretOpener;
}

/** The one file a bundle rendered from uncommitted changes has more: what it was made from. */
export const DIRTY_MARKER = 'edgectl/uncommitted';
const dirtyMarker = (commit: string | null) => Buffer.from(`rendered from uncommitted changes${commit ? ` on top of commit ${commit}` : ' (no commit yet)'}\n`);

/**
 * Renders the bundle of every selected node: nginx (edge, relay, core), Kong (kong: true), the
 * agent's config and the app payloads. Pure apart from reading templates and payloads through
 * the fleet's source; deterministic: same fleet commit and edgectl version, same bytes.
 */
export async function renderFleet(loaded: LoadedFleet, opts: RenderOptions): Promise<Bundle[]> {
  const log = opts.logger ?? silentLogger;
  const { model, source } = loaded;
  const ctx = opts.context ?? renderContext(model);
  const selected = selectNodes(ctx.nodes, { nodes: opts.nodes, selector: opts.selector });
  const templates = await loadTemplates(source);
  if (templates.fleetFiles.length > 0) log.info('using the fleet\'s nginx snippets', { files: templates.fleetFiles });
  const placedApps = new Set<string>();
  for (const n of selected) for (const a of ctx.placement.byNode.get(n.name) ?? []) placedApps.add(a);
  const payloads = await loadPayloads(source, [...placedApps].map((a) => ctx.apps.get(a)!));
  const secrets = opts.secrets ?? secretOpener({ env: process.env });
  const tls = await loadAppTls(source, [...placedApps].sort().map((a) => ctx.apps.get(a)!), secrets, log);
  const hopTls = await loadHopTls(ctx, source, selected, secrets, log);
  const nginx = new NginxRenderer(templates);
  // Reverse nodes pin their relay's host key from here when the relay has no spec.ssh.hostKey.
  const knownHosts = selected.some((n) => n.tunnel === 'reverse') ? parseKnownHosts((await source.readExtra('known_hosts'))?.toString('utf8') ?? '') : [];
  const agents = new AgentRenderer(ctx, payloads, knownHosts, hopTls);
  const kong = new KongRenderer(templates, ctx.tenants);
  const fleet = { name: model.name, commit: model.commit ?? null, dirty: model.dirty };
  const bundles: Bundle[] = [];
  const every = selected.length >= 2000 ? 1000 : selected.length >= 200 ? 100 : 0;
  for (const node of selected) {
    const apps = appsOnNode(ctx, node);
    const { conf, fragments } = nginx.render(node, apps, tls);
    const files: BundleFile[] = fragments.map((f) => ({ path: f.path, data: f.data, mode: 0o644 }));
    for (const a of apps) for (const f of tls.get(a.name)?.files ?? []) files.push(f);
    files.push({ path: 'nginx/mime.types', data: templates.mimeTypes, mode: 0o644 });
    for (const s of templates.snippets) if (apps.length > 0 || s.path.startsWith('nginx/http.d/')) files.push({ path: s.path, data: s.data, mode: 0o644 });
    files.push({ path: 'agent/agent.json', data: agents.render(node, apps), mode: 0o644 });
    files.push(...tunnelFiles(node, ctx.nodes));
    files.push(...hopTls?.files.get(node.name) ?? []);
    if (node.kong) {
      files.push({ path: 'kong/kong.yml', data: kong.render(apps.filter((a) => a.spec.type === 'api')), mode: 0o644 });
    }
    for (const a of apps) for (const p of payloads.get(a.name) ?? []) files.push({ path: p.path, data: p.data, mode: 0o644 });
    // A working tree with uncommitted changes is in no commit: the release says so in its files, so
    // its digest is never that of a commit's release (which would keep the other's commit stamp).
    if (fleet.dirty) files.push({ path: DIRTY_MARKER, data: dirtyMarker(fleet.commit), mode: 0o644 });
    // Every file nginx will read, parsed as nginx parses it (each distinct buffer once).
    assertNginxSafeOnce('nginx/nginx.conf', conf);
    // Certificates and keys are PEM, not nginx syntax: nginx reads them as files (ssl_certificate).
    for (const f of files) if (f.path.startsWith('nginx/') && !isTlsFilePath(f.path)) assertNginxSafeOnce(f.path, f.data);
    const bundle = assembleBundle(node.name, conf, files, { edgectl: opts.edgectlVersion, fleet });
    bundles.push(bundle);
    if (opts.onBundle) await opts.onBundle(bundle);
    // The event loop runs every few nodes: connections plan opened meanwhile (nodes/warm.ts) go on
    // with their handshakes while the rest renders, instead of waiting for the whole fleet.
    if (bundles.length % 4 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (every && bundles.length % every === 0) log.info(`rendered ${bundles.length}/${selected.length} nodes`, { done: bundles.length, total: selected.length });
  }
  return bundles;
}
