import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import ejs from 'ejs';
import { EdgectlError, FLEET_TEMPLATE_HINT } from '../errors.js';
import type { FleetSource } from '../fleet/source.js';
import * as nq from './nginx-quote.js';

/**
 * Built-in templates live in templates/ at the package root; a fleet overrides any of them with a
 * file at the same relative path under its own templates/ (read from the same working tree or git
 * revision as the fleet). Each template is compiled once per render.
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
  'kong/kong.yml.ejs',
] as const;
export const RAW_FILES = ['nginx/mime.types'] as const;

export type TemplateName = (typeof TEMPLATE_NAMES)[number];
export type RawName = (typeof RAW_FILES)[number];

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
const NGINX_LOCALS = [...Object.keys(NGINX_HELPERS), 'node', 'app', 'id', 'head', 'locations', 'params', 'upstream', 'cache', 'root', 'index', 'php', 'socket', 'kong', 'httpq', 'configId', 'hasApps'];
const KONG_LOCALS = ['y', 'services', 'upstreams', 'consumers'];

type Compiled = (data: Record<string, unknown>) => string;

export interface Templates {
  render(name: TemplateName, data: Record<string, unknown>): string;
  raw(name: RawName): Buffer;
  /** Which templates came from the fleet's templates/ (for the summary). */
  overridden: string[];
}

async function builtin(rel: string): Promise<Buffer> {
  return readFile(path.join(BUILTIN_TEMPLATE_DIR, rel));
}

export async function loadTemplates(source: FleetSource): Promise<Templates> {
  const compiled = new Map<string, Compiled>();
  const raws = new Map<string, Buffer>();
  const overridden: string[] = [];
  const load = async (rel: string) => {
    const own = await source.readExtra(`templates/${rel}`);
    if (own) overridden.push(`templates/${rel}`);
    // The name must survive EJS's error path, which passes it through the escape function (q).
    return { bytes: own ?? (await builtin(rel)), file: own ? `fleet:templates/${rel}` : `edgectl:templates/${rel}` };
  };
  await Promise.all([
    ...TEMPLATE_NAMES.map(async (rel) => {
      const { bytes, file } = await load(rel);
      const isKong = rel.startsWith('kong/');
      const helpers: Record<string, unknown> = isKong ? KONG_HELPERS : NGINX_HELPERS;
      let fn: ejs.TemplateFunction;
      try {
        fn = ejs.compile(bytes.toString('utf8'), {
          filename: file,
          localsName: 'it',
          _with: false,
          strict: true,
          destructuredLocals: isKong ? KONG_LOCALS : NGINX_LOCALS,
          // `<%= v %>` goes through the quoting helper of the target syntax, never HTML escaping.
          escape: (isKong ? y : nq.q) as unknown as (s: string) => string,
          compileDebug: true,
        }) as ejs.TemplateFunction;
      } catch (e) {
        throw new EdgectlError('EDGECTL_RENDER', `cannot compile ${file}: ${(e as Error).message}`, { hint: file.startsWith('fleet:') ? FLEET_TEMPLATE_HINT : undefined });
      }
      compiled.set(rel, (data) => fn({ ...helpers, ...data }) as string);
    }),
    ...RAW_FILES.map(async (rel) => raws.set(rel, (await load(rel)).bytes)),
  ]);
  overridden.sort();
  return {
    overridden,
    raw: (name) => raws.get(name)!,
    render(name, data) {
      try {
        return compiled.get(name)!(data);
      } catch (e) {
        // EJS prefixes "<file>:<line>\n<excerpt>\n\n" to the message: keep the cause and where.
        const msg = (e as Error).message ?? String(e);
        const cut = msg.lastIndexOf('\n\n');
        const where = cut >= 0 ? msg.slice(0, msg.indexOf('\n')) : name;
        const cause = cut >= 0 ? msg.slice(cut + 2) : msg;
        // The hint says what failed: a template of the fleet's own, else the value a helper refused (or a bug).
        const own = overridden.includes(`templates/${name}`) ? FLEET_TEMPLATE_HINT : undefined;
        if (e instanceof EdgectlError) throw new EdgectlError(e.code, `${cause} (at ${where})`, { hint: own ?? e.hint });
        throw new EdgectlError('EDGECTL_RENDER', `template ${where} failed: ${cause}`, { hint: own });
      }
    },
  };
}
