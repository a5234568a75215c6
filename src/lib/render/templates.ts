import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import ejs from 'ejs';
import { EdgectlError } from '../errors.js';
import type { FleetSource } from '../fleet/source.js';
import { fleetNginxFiles, snippetBundlePath } from '../fleet/templates.js';
import * as nq from './nginx-quote.js';
import type { RenderedFile } from './nginx.js';

/**
 * edgectl's own EJS templates, in templates/ at the package root, compiled once per render. A
 * fleet never supplies a template (that would be code run on the machine that renders): it adds
 * plain nginx snippets and may replace mime.types, both parsed and allow-listed (see
 * src/lib/fleet/templates.ts) and written into the bundle as parsed.
 */
export const TEMPLATE_NAMES = [
  'nginx/nginx.conf.ejs',
  'nginx/locations.conf.ejs',
  'nginx/server-head.conf.ejs',
  'nginx/fastcgi-params.conf.ejs',
  'nginx/app-static.conf.ejs',
  'nginx/app-proxy.conf.ejs',
  'nginx/app-fastcgi.conf.ejs',
  'nginx/app-api.conf.ejs',
  'nginx/tls-redirect.conf.ejs',
  'kong/kong.yml.ejs',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** src/lib/render or dist/lib/render → the package root's templates/. */
export const BUILTIN_TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../templates');

/** Scalars and plain data as YAML: JSON is valid YAML, and JSON.stringify quotes and escapes. */
export function y(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new EdgectlError('EDGECTL_RENDER', `refusing to render ${v} into kong.yml`);
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
    throw new EdgectlError('EDGECTL_RENDER', `refusing to render a ${typeof v} into kong.yml`);
  }
  return JSON.stringify(v);
}

function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text.replace(/^(?=.)/gm, pad);
}

/** What nginx templates can call. Every fleet value goes through one of these. */
export const NGINX_HELPERS = {
  q: nq.q,
  name: nq.name,
  domain: nq.domain,
  urlPath: nq.urlPath,
  absPath: nq.absPath,
  relPath: nq.relPath,
  duration: nq.duration,
  int: nq.int,
  listen: nq.listen,
  hostPort: nq.hostPort,
  indent,
};
export const KONG_HELPERS = { y };

/** Names a template may use (EJS `destructuredLocals`: no `with`, fast lookups). */
const NGINX_LOCALS = [...Object.keys(NGINX_HELPERS), 'node', 'app', 'id', 'head', 'locations', 'params', 'upstream', 'cache', 'root', 'index', 'php', 'socket', 'kong', 'httpq', 'configId', 'hasApps', 'snippets', 'tls', 'https'];
const KONG_LOCALS = ['y', 'services', 'upstreams', 'consumers'];

type Compiled = (data: Record<string, unknown>) => string;

export interface Templates {
  render(name: TemplateName, data: Record<string, unknown>): string;
  /** nginx/mime.types: the fleet's (parsed and rewritten) or edgectl's. */
  mimeTypes: Buffer;
  /** The fleet's snippets as bundle files (nginx/http.d/*.conf, nginx/server.d/*.conf), in path order. */
  snippets: RenderedFile[];
  /** Which files of the fleet's templates/ are used (for the summary). */
  fleetFiles: string[];
}

async function builtin(rel: string): Promise<Buffer> {
  return readFile(path.join(BUILTIN_TEMPLATE_DIR, rel));
}

/** The fleet's snippets and mime.types, checked again here: render never trusts that validate ran. */
function fleetFiles(source: FleetSource): { mimeTypes?: Buffer; snippets: RenderedFile[]; used: string[] } {
  const f = fleetNginxFiles(source.templates ?? []);
  const [p] = f.problems;
  if (p) throw new EdgectlError('EDGECTL_FLEET_INVALID', `${p.file}:${p.line}:${p.column}: ${p.message}`, { hint: p.hint });
  const snippets = f.snippets.map((s) => ({ path: snippetBundlePath(s), data: Buffer.from(s.text) })).sort((a, b) => (a.path < b.path ? -1 : 1));
  return { mimeTypes: f.mimeTypes === undefined ? undefined : Buffer.from(f.mimeTypes), snippets, used: [...f.texts.keys()].sort() };
}

export async function loadTemplates(source: FleetSource): Promise<Templates> {
  const own = fleetFiles(source);
  const compiled = new Map<string, Compiled>();
  await Promise.all(TEMPLATE_NAMES.map(async (rel) => {
    const file = `edgectl:templates/${rel}`;
    const isKong = rel.startsWith('kong/');
    const helpers: Record<string, unknown> = isKong ? KONG_HELPERS : NGINX_HELPERS;
    // The name must survive EJS's error path, which passes it through the escape function (q).
    const fn = ejs.compile((await builtin(rel)).toString('utf8'), {
      filename: file,
      localsName: 'it',
      _with: false,
      strict: true,
      destructuredLocals: isKong ? KONG_LOCALS : NGINX_LOCALS,
      // `<%= v %>` goes through the quoting helper of the target syntax, never HTML escaping.
      escape: (isKong ? y : nq.q) as unknown as (s: string) => string,
      compileDebug: true,
    }) as ejs.TemplateFunction;
    compiled.set(rel, (data) => fn({ ...helpers, ...data }) as string);
  }));
  return {
    mimeTypes: own.mimeTypes ?? (await builtin('nginx/mime.types')),
    snippets: own.snippets,
    fleetFiles: own.used,
    render(name, data) {
      try {
        return compiled.get(name)!(data);
      } catch (e) {
        // EJS prefixes "<file>:<line>\n<excerpt>\n\n" to the message: keep the cause and where.
        const msg = (e as Error).message ?? String(e);
        const cut = msg.lastIndexOf('\n\n');
        const where = cut >= 0 ? msg.slice(0, msg.indexOf('\n')) : name;
        const cause = cut >= 0 ? msg.slice(cut + 2) : msg;
        // Only edgectl's own templates are compiled: a failure is a value a helper refused (its hint), or a bug.
        if (e instanceof EdgectlError) throw new EdgectlError(e.code, `${cause} (at ${where})`, { hint: e.hint });
        throw new EdgectlError('EDGECTL_RENDER', `template ${where} failed: ${cause}`);
      }
    },
  };
}
