import { NginxSyntaxError, formatDirectives, parseNginx, quoteWord, type NginxDirective } from './syntax.js';
import type { GuardProblem } from './guard.js';

/**
 * What a fleet may add to the nginx config edgectl renders: plain nginx directives, not a
 * template. A fleet's files are data, never code: no EJS, no substitution, no logic. Each file
 * is parsed with the same parser nginx's syntax is read with, every directive must be on the
 * allow-list below for its context, and the bundle gets the parsed directives written out
 * again (one a line, re-quoted), never the fleet's bytes.
 *
 * The allow-list holds directives that change how responses are sent (headers, compression,
 * caching hints, limits, buffers, access by address). Left out on purpose: anything that reads
 * or writes files (include, root, alias, *_log, auth_basic_user_file, ssl_*), that sends
 * requests elsewhere (proxy_pass, fastcgi_pass, *_pass, resolver: they would bypass upstream
 * validation), that rewrites or answers requests at server level (return, rewrite, set, if:
 * they would shadow /healthz and /.edgectl/config, or forge the tenant in the access log),
 * that changes the client address (real_ip_*), blocks (location, map, …) and code of any kind.
 */
export type SnippetContext = 'http' | 'server';

const BOTH: readonly SnippetContext[] = ['http', 'server'];
const HTTP: readonly SnippetContext[] = ['http'];

export const SNIPPET_DIRECTIVES: Readonly<Record<string, readonly SnippetContext[]>> = {
  add_header: BOTH,
  add_trailer: BOTH,
  expires: BOTH,
  etag: BOTH,
  if_modified_since: BOTH,
  charset: BOTH,
  charset_types: BOTH,
  server_tokens: BOTH,
  gzip: BOTH,
  gzip_buffers: BOTH,
  gzip_comp_level: BOTH,
  gzip_disable: BOTH,
  gzip_http_version: BOTH,
  gzip_min_length: BOTH,
  gzip_proxied: BOTH,
  gzip_types: BOTH,
  gzip_vary: BOTH,
  client_max_body_size: BOTH,
  client_body_buffer_size: BOTH,
  client_body_timeout: BOTH,
  client_header_timeout: BOTH,
  client_header_buffer_size: BOTH,
  large_client_header_buffers: BOTH,
  keepalive_timeout: BOTH,
  keepalive_requests: BOTH,
  send_timeout: BOTH,
  tcp_nodelay: BOTH,
  limit_rate: BOTH,
  limit_rate_after: BOTH,
  limit_req_zone: HTTP,
  limit_req: BOTH,
  limit_req_status: BOTH,
  limit_req_log_level: BOTH,
  limit_conn_zone: HTTP,
  limit_conn: BOTH,
  limit_conn_status: BOTH,
  limit_conn_log_level: BOTH,
  allow: BOTH,
  deny: BOTH,
  error_page: BOTH,
  proxy_buffer_size: BOTH,
  proxy_buffers: BOTH,
  proxy_busy_buffers_size: BOTH,
  proxy_hide_header: BOTH,
};

/** Where each kind of snippet lives in a fleet and in a bundle. */
export const SNIPPET_DIRS: Readonly<Record<SnippetContext, string>> = { http: 'http.d', server: 'server.d' };
export const SNIPPET_FILE = /^[a-z0-9][a-z0-9_-]{0,62}\.conf$/;
/** Snippets and mime.types are a few kilobytes; a larger file is a mistake or an attack. */
export const MAX_SNIPPET_BYTES = 256 * 1024;
const MAX_ARGS = 16;
const MAX_WORD = 1024;

export interface CheckedFile {
  /** The canonical text for the bundle, when there is no problem. */
  text?: string;
  problems: GuardProblem[];
}

function parsed(data: Buffer): { tree?: NginxDirective[]; problems: GuardProblem[] } {
  if (data.length > MAX_SNIPPET_BYTES) return { problems: [{ line: 1, column: 1, message: `the file is larger than ${MAX_SNIPPET_BYTES / 1024} KiB` }] };
  try {
    return { tree: parseNginx(data), problems: [] };
  } catch (e) {
    if (e instanceof NginxSyntaxError) return { problems: [{ line: e.line, column: e.column, message: `nginx syntax: ${e.message}` }] };
    throw e;
  }
}

/** Printable ASCII, spaces allowed (quoted on output): no control characters, no newlines. */
const PRINTABLE = /^[\x20-\x7e]*$/;

/** An nginx size (`512`, `8k`, `1m`) in bytes, or NaN. */
function sizeBytes(w: string): number {
  const m = /^(\d{1,12})([kKmMgG]?)$/.exec(w);
  if (!m) return NaN;
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2].toLowerCase()];
}

const MiB = 1024 * 1024;
/** Buffers nginx allocates per connection or request: bounded, or anonymous clients exhaust the node's memory. */
const BUFFER_MAX = 1 * MiB;
const BUFFER_COUNT_MAX = 64;
/** Shared-memory zones are allocated once at start: bounded so a snippet cannot take the node's memory. */
const ZONE_MAX = 64 * MiB;
/** Fleet zone names have no ".": every zone edgectl generates is named by an app id (`<tenant>.<app>`). */
const ZONE_NAME = /^[a-z0-9_-]{1,63}$/;

/** Size-bearing arguments: [directive, index of the count (or -1), index of the size]. */
const BUFFERS: Readonly<Record<string, readonly [number, number]>> = {
  client_body_buffer_size: [-1, 0],
  client_header_buffer_size: [-1, 0],
  proxy_buffer_size: [-1, 0],
  proxy_busy_buffers_size: [-1, 0],
  large_client_header_buffers: [0, 1],
  proxy_buffers: [0, 1],
  gzip_buffers: [0, 1],
};

/** Why the arguments of an allowed directive are refused, or undefined. */
function argumentProblem(d: NginxDirective): string | undefined {
  const buf = Object.hasOwn(BUFFERS, d.name) ? BUFFERS[d.name] : undefined;
  if (buf) {
    const [ci, si] = buf;
    const size = sizeBytes(d.args[si] ?? '');
    if (!(size > 0 && size <= BUFFER_MAX)) return `"${d.name}": the buffer size must be a size of at most 1m (found ${JSON.stringify(d.args[si] ?? '')})`;
    if (ci >= 0 && !(Number(d.args[ci]) >= 1 && Number(d.args[ci]) <= BUFFER_COUNT_MAX && /^\d+$/.test(d.args[ci]))) return `"${d.name}": the number of buffers must be 1 to ${BUFFER_COUNT_MAX}`;
  }
  if (d.name === 'limit_req_zone' || d.name === 'limit_conn_zone') {
    const zone = d.args.find((a) => a.startsWith('zone='));
    const m = zone ? /^zone=([^:]*):(.*)$/.exec(zone) : null;
    if (!m || !ZONE_NAME.test(m[1])) return `"${d.name}" needs zone=NAME:SIZE with NAME of lowercase letters, digits, "_" and "-" (no ".": edgectl's own zones are named by app ids)`;
    const size = sizeBytes(m[2]);
    if (!(size > 0 && size <= ZONE_MAX)) return `"${d.name}": the zone size must be at most 64m (found ${JSON.stringify(m[2])})`;
  }
  if (d.name === 'error_page' && !d.args[d.args.length - 1].startsWith('/')) {
    // A URL there redirects the node's visitors anywhere (an open redirect); a named location does not exist in a fleet.
    return '"error_page": the page must be a local path starting with "/"';
  }
  return undefined;
}

export function checkSnippet(data: Buffer, context: SnippetContext): CheckedFile {
  const { tree, problems } = parsed(data);
  if (!tree) return { problems };
  for (const d of tree) {
    const where = { line: d.line, column: d.column };
    const allowed = Object.hasOwn(SNIPPET_DIRECTIVES, d.name) ? SNIPPET_DIRECTIVES[d.name] : undefined;
    if (d.block) problems.push({ ...where, message: `"${d.name} { … }": a snippet holds simple directives only, no blocks` });
    else if (!allowed) problems.push({ ...where, message: `the directive ${JSON.stringify(d.name)} is not allowed in a fleet snippet` });
    else if (!allowed.includes(context)) problems.push({ ...where, message: `the directive "${d.name}" is allowed only in ${allowed.map((c) => `${SNIPPET_DIRS[c]}/`).join(', ')} snippets` });
    else if (d.args.length === 0 || d.args.length > MAX_ARGS) problems.push({ ...where, message: `"${d.name}" needs 1 to ${MAX_ARGS} arguments` });
    else {
      const bad = d.words.slice(1).find((w) => !PRINTABLE.test(w.value) || w.value.length > MAX_WORD);
      if (bad) problems.push({ line: bad.line, column: bad.column, message: `an argument of "${d.name}" has control characters (a newline, a tab) or is longer than ${MAX_WORD}` });
      const why = bad ? undefined : argumentProblem(d);
      if (why) problems.push({ ...where, message: why });
    }
  }
  return problems.length ? { problems } : { problems, text: formatDirectives(tree) };
}

/** mime.types: one `types { type ext …; }` block, types and extensions as plain tokens. */
const MIME_TYPE = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,126}\/[A-Za-z0-9][A-Za-z0-9.+_-]{0,126}$/;
const EXTENSION = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,62}$/;

export function checkMimeTypes(data: Buffer): CheckedFile {
  const { tree, problems } = parsed(data);
  if (!tree) return { problems };
  const [types, ...more] = tree;
  if (!types || types.name !== 'types' || !types.block || types.args.length > 0) {
    return { problems: [{ line: types?.line ?? 1, column: types?.column ?? 1, message: 'mime.types must be exactly one "types { … }" block' }] };
  }
  for (const d of more) problems.push({ line: d.line, column: d.column, message: `nothing may follow the types block (found "${d.name}")` });
  for (const d of types.block) {
    if (d.block || !MIME_TYPE.test(d.name)) problems.push({ line: d.line, column: d.column, message: `${JSON.stringify(d.name)} is not a MIME type like text/html` });
    else if (d.args.length === 0) problems.push({ line: d.line, column: d.column, message: `${d.name} lists no file extension` });
    const bad = d.words.slice(1).find((w) => !EXTENSION.test(w.value));
    if (bad) problems.push({ line: bad.line, column: bad.column, message: `${JSON.stringify(bad.value)} is not a file extension` });
  }
  if (problems.length) return { problems };
  const body = types.block.map((d) => `    ${[d.name, ...d.args].map(quoteWord).join(' ')};\n`).join('');
  return { problems, text: `types {\n${body}}\n` };
}
