import { checkMimeTypes, checkSnippet, SNIPPET_DIRS, SNIPPET_FILE, type SnippetContext } from '../nginx/snippets.js';
import type { Problem } from './problems.js';
import type { TemplateFile } from './source.js';

/**
 * What a fleet's templates/ may hold, and what it becomes in a bundle. A fleet adds nginx
 * directives as plain snippet files, never code (edgectl no longer compiles a fleet's EJS: a
 * pull request that CI validates and renders would run its JavaScript):
 *
 *   templates/nginx/http.d/NAME.conf     into the http block of every node    → nginx/http.d/NAME.conf
 *   templates/nginx/server.d/NAME.conf   into every app's server block        → nginx/server.d/NAME.conf
 *   templates/nginx/mime.types           one `types { … }` block, replaces edgectl's → nginx/mime.types
 *
 * Every directive is checked against an allow-list (src/lib/nginx/snippets.ts); the bundle gets
 * the parsed directives written out again, not the fleet's bytes.
 */
export interface FleetNginxFiles {
  problems: Problem[];
  /** File texts by fleet path, for reports that quote the offending line. */
  texts: Map<string, string>;
  snippets: { context: SnippetContext; name: string; text: string }[];
  mimeTypes?: string;
}

const SNIPPET_PATH = /^templates\/nginx\/(http|server)\.d\/([^/]+)$/;
const HINT = 'A fleet adds nginx directives as plain files: templates/nginx/http.d/*.conf (http block), templates/nginx/server.d/*.conf (every app server) and templates/nginx/mime.types; see docs/render.md (Templates).';

function problem(file: string, rule: string, message: string, line = 1, column = 1, hint = HINT): Problem {
  return { severity: 'error', rule, file, line, column, path: '', message, hint };
}

export function fleetNginxFiles(templates: readonly TemplateFile[]): FleetNginxFiles {
  const out: FleetNginxFiles = { problems: [], texts: new Map(), snippets: [] };
  for (const t of templates) {
    const snip = SNIPPET_PATH.exec(t.path);
    const used = snip !== null || t.path === 'templates/nginx/mime.types';
    if (t.path.endsWith('.ejs')) {
      out.problems.push(problem(t.path, 'template-code', 'fleet templates are no longer code: edgectl does not compile a fleet\'s EJS templates (they would run JavaScript on the machine that renders)'));
      continue;
    }
    // A link or special file here is reported once, as `fleet-link`, by rules-files.ts.
    if (t.type !== 'file') continue;
    if (!used) {
      // Other files under templates/ are the fleet's own (notes, drafts); under nginx/ or kong/ they look like a mistake.
      if (t.path.startsWith('templates/nginx/') || t.path.startsWith('templates/kong/')) out.problems.push(problem(t.path, 'template-unknown-file', `edgectl does not use ${t.path}`));
      continue;
    }
    const bytes = t.bytes ?? Buffer.alloc(0);
    out.texts.set(t.path, bytes.toString('utf8'));
    if (snip && !SNIPPET_FILE.test(snip[2])) {
      out.problems.push(problem(t.path, 'template-unknown-file', `snippet file names are NAME.conf with lowercase letters, digits, "-" and "_" (not ${JSON.stringify(snip[2])})`));
      continue;
    }
    const context = snip?.[1] as SnippetContext | undefined;
    const checked = context ? checkSnippet(bytes, context) : checkMimeTypes(bytes);
    for (const p of checked.problems) out.problems.push(problem(t.path, context ? 'template-directive' : 'template-mime-types', p.message, p.line, p.column));
    if (checked.text === undefined) continue;
    if (context) out.snippets.push({ context, name: snip![2], text: checked.text });
    else out.mimeTypes = checked.text;
  }
  return out;
}

/** The bundle path of a snippet. */
export function snippetBundlePath(s: { context: SnippetContext; name: string }): string {
  return `nginx/${SNIPPET_DIRS[s.context]}/${s.name}`;
}
