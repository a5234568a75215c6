import { EdgectlError } from '../errors.js';
import { NginxSyntaxError, parseNginx, walkDirectives, type NginxDirective } from './syntax.js';

/**
 * What no file of a bundle's nginx/ may contain, whoever wrote it (edgectl's templates, a fleet's
 * snippets, a saved plan someone edited): checked on the parsed tree, so quoting, escapes and
 * comments cannot hide a directive. Running `nginx -t` on a config already executes what these
 * load, so `render --check`, the plan loader and render itself check before anything runs.
 */
export interface GuardProblem {
  line: number;
  column: number;
  message: string;
}

/** Directives that load code into nginx (dynamic modules, crypto engines, embedded languages). */
const LOADS_CODE = new Set(['load_module', 'ssl_engine', 'env', 'ssl_conf_command', 'google_perftools_profiles']);
const LOADS_CODE_RE = /lua|perl|^js_|^njs|_by_|^wasm|^mruby|^xslt_|^python|^wsgi|^jvm_|^php_/;
/** Directives that make nginx write files where a request asks (WebDAV, response stores). */
const WRITES_ON_REQUEST = /^(?:dav_methods|dav_access|create_full_put_path|(?:proxy|fastcgi|scgi|uwsgi)_store(?:_access)?)$/;
/** Directives whose first argument is a file nginx creates or opens for writing, even under -t. */
const WRITES_FILE = /^(?:pid|lock_file|error_log|access_log|working_directory|\w+_temp_path|\w+_cache_path)$/;
/** Where, under the node's root, nginx may write: what edgectl's nginx.conf uses (not current/, the release itself). */
const WRITE_DIRS = new Set(['log', 'run', 'cache', 'tmp']);
/** Directives that serve files: only from inside the release (relative), never the node's filesystem. */
const SERVES_FILES = new Set(['root', 'alias']);

/** A relative path under the bundle's nginx/ (includes) or the node's root (written files): no `..`, no `/` start. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const GLOB_SEGMENT = /^[A-Za-z0-9_*][A-Za-z0-9._*-]*$/;
function relativeInside(p: string, glob: boolean): boolean {
  const segs = p.split('/');
  return p.length > 0 && p.length <= 1024 && segs.every((s) => (glob ? GLOB_SEGMENT : SEGMENT).test(s) && s !== '..' && s !== '.');
}

export function isForbiddenDirective(name: string): boolean {
  const n = name.toLowerCase();
  return LOADS_CODE.has(n) || LOADS_CODE_RE.test(n) || WRITES_ON_REQUEST.test(n);
}

const SSL_FILES = /^ssl_(?:certificate|certificate_key|password_file)$/;

/** Blocks whose lines are data (a MIME type, a map key), not directives; only `include` works inside them. */
const DATA_BLOCKS = new Set(['types', 'map', 'geo', 'split_clients', 'charset_map']);

function directiveProblem(d: NginxDirective, parents: string[]): string | undefined {
  const n = d.name.toLowerCase();
  const data = parents.length > 0 && DATA_BLOCKS.has(parents[parents.length - 1]);
  if (!data && isForbiddenDirective(n)) return `the directive "${d.name}" is never allowed in a bundle (it loads code or writes files on request)`;
  if (n === 'include') {
    // nginx resolves includes against the directory of nginx.conf: the bundle's nginx/.
    if (d.args.length !== 1 || !relativeInside(d.args[0], true)) return `include ${JSON.stringify(d.args.join(' '))}: only a relative path inside the bundle's nginx/ may be included (no "..", no absolute path)`;
  }
  if (!data && WRITES_FILE.test(n)) {
    const target = d.args[0] ?? '';
    const off = (n === 'access_log' && target === 'off') || (n === 'error_log' && target === 'stderr');
    if (!off && !(relativeInside(target, false) && WRITE_DIRS.has(target.split('/')[0]))) return `${d.name} ${JSON.stringify(target)}: nginx writes only under log/, run/, cache/ or tmp/ of the node's root`;
  }
  if (!data && SERVES_FILES.has(n) && !relativeInside(d.args[0] ?? '', false)) return `${d.name} ${JSON.stringify(d.args[0] ?? '')}: files are served only from inside the release (a relative path, no "..")`;
  for (const w of d.words) {
    if (w.value.includes('\0')) return `a NUL byte in "${d.name}"`;
    if (/^(?:engine|store):/i.test(w.value) && /certificate|_key$/.test(n)) return `${d.name} ${JSON.stringify(w.value)}: OpenSSL engines and stores load code`;
  }
  // Certificates and keys come from the release (nginx/tls/), never from elsewhere on the node.
  if (!data && SSL_FILES.test(n) && !relativeInside(d.args[0] ?? '', true)) return `${d.name} ${JSON.stringify(d.args[0] ?? '')}: certificates and keys are read only from inside the bundle's nginx/ (a relative path, no "..")`;
  return undefined;
}

/** Every problem of one nginx file; a syntax error is one (nginx would refuse the file anyway). */
export function guardProblems(data: Buffer | string): GuardProblem[] {
  let tree: NginxDirective[];
  try {
    tree = parseNginx(data);
  } catch (e) {
    if (e instanceof NginxSyntaxError) return [{ line: e.line, column: e.column, message: e.message }];
    throw e;
  }
  const out: GuardProblem[] = [];
  for (const { d, parents } of walkDirectives(tree)) {
    const message = directiveProblem(d, parents);
    if (message) out.push({ line: d.line, column: d.column, message });
  }
  return out;
}

/** Throws EDGECTL_RENDER (or the given code) naming file, line and column of the first problem. */
export function assertNginxSafe(file: string, data: Buffer | string, code: 'EDGECTL_RENDER' | 'EDGECTL_USAGE' = 'EDGECTL_RENDER'): void {
  const [p] = guardProblems(data);
  if (p) throw new EdgectlError(code, `${file}:${p.line}:${p.column}: ${p.message}`, { hint: 'edgectl refuses nginx config that could load code or reach outside the bundle; see docs/render.md (Templates).' });
}

/** Checks each distinct buffer once: fragments and mime.types are shared by thousands of bundles. */
const checked = new WeakSet<Buffer>();
export function assertNginxSafeOnce(file: string, data: Buffer): void {
  if (checked.has(data)) return;
  assertNginxSafe(file, data);
  checked.add(data);
}
