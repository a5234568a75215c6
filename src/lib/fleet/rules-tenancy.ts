import type { AppResource } from './model.js';
import { report, type RuleContext } from './rule-context.js';

const where = (a: AppResource) => `app "${a.name}", ${a.source.file}:${a.source.line}`;

/**
 * Tenants own their zones. A wildcard `*.z` claims the zone z: z itself and every name under it,
 * at any depth (nginx's `*.z` matches a.b.z too). No other tenant may serve a name in that zone,
 * exact or wildcard. Exact names claim only themselves: tenants may serve shop.example and
 * a.shop.example side by side, unless one of them holds a wildcard over the other. The same
 * name twice is domain-conflict's (rules-apps.ts).
 */
export function domainZoneRules(ctx: RuleContext): void {
  const zones = new Map<string, { app: AppResource; index: number }>();
  for (const a of ctx.m.apps) {
    a.spec.domains.forEach((d, index) => {
      if (d.startsWith('*.') && !zones.has(d.slice(2))) zones.set(d.slice(2), { app: a, index });
    });
  }
  if (zones.size === 0) return;
  const toldWildcard = new Set<string>();
  const hint = 'A wildcard *.zone gives its tenant the zone and every name under it: give those names to that tenant, or list the names it needs instead of the wildcard.';
  for (const a of ctx.m.apps) {
    a.spec.domains.forEach((d, i) => {
      const name = d.startsWith('*.') ? d.slice(2) : d;
      // The zones the name lies in: itself, then each parent (a name has at most 127 labels).
      for (let s: string | undefined = name; s; s = s.includes('.') ? s.slice(s.indexOf('.') + 1) : undefined) {
        const z = zones.get(s);
        if (!z || z.app.spec.tenant === a.spec.tenant) continue;
        if (s === name && d.startsWith('*.')) continue; // the same wildcard twice: domain-conflict
        report(ctx, a, ['spec', 'domains', i], 'domain-zone-conflict', `domain "${d}" is in the zone of tenant "${z.app.spec.tenant}"'s wildcard *.${s} (${where(z.app)})`, hint);
        const key = `${z.app.name}|${z.index}`;
        if (!toldWildcard.has(key)) {
          toldWildcard.add(key);
          report(ctx, z.app, ['spec', 'domains', z.index], 'domain-zone-conflict', `wildcard *.${s} claims the zone ${s}, where tenant "${a.spec.tenant}" serves "${d}" (${where(a)})`, hint);
        }
        break;
      }
    });
  }
}

/** The directory an app ships its files from, and the field that names it. */
function payloadPath(a: AppResource): { dir: string; field: string[] } | undefined {
  if (a.spec.static?.path) return { dir: a.spec.static.path, field: ['spec', 'static', 'path'] };
  if (a.spec.fastcgi?.path) return { dir: a.spec.fastcgi.path, field: ['spec', 'fastcgi', 'path'] };
  return undefined;
}

/** `a/b/c` → `a`, `a/b`, `a/b/c`. */
function prefixes(p: string): string[] {
  const parts = p.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

export const PAYLOAD_ROOT = 'sites';

/**
 * Tenants own their paths. An app's files (static.path, fastcgi.path) ship in bundles that nginx
 * serves publicly, so they must come from under sites/ (never tenants/ with its token hashes,
 * templates/, nodes/ or any other directory of the operator's), from a directory that holds no
 * fleet document, and not from a directory another tenant's app uses, nor one inside or around
 * it. Paths compare without case: on a case-insensitive disk Sites/Initech is sites/initech.
 */
export function payloadPathRules(ctx: RuleContext): void {
  const withPath = ctx.m.apps.map((a) => ({ a, p: payloadPath(a) })).filter((x): x is { a: AppResource; p: { dir: string; field: string[] } } => x.p !== undefined);
  if (withPath.length === 0) return;
  const docDirs = new Map<string, string>();
  for (const f of ctx.m.files) for (const p of prefixes(f.toLowerCase())) if (!docDirs.has(p)) docDirs.set(p, f);
  // Every used path, and every directory above one, with apps whose paths they are or contain:
  // the first, and the first of another tenant (enough to name someone else's for any tenant).
  const exact = new Map<string, AppResource[]>();
  const below = new Map<string, AppResource[]>();
  const add = (m: Map<string, AppResource[]>, key: string, a: AppResource) => {
    const list = m.get(key);
    if (!list) m.set(key, [a]);
    else if (list.length === 1 && list[0].spec.tenant !== a.spec.tenant) list.push(a);
  };
  for (const { a, p } of withPath) {
    if (!p.dir.startsWith(`${PAYLOAD_ROOT}/`)) continue; // refused below on its own
    const lower = p.dir.toLowerCase();
    add(exact, lower, a);
    for (const q of prefixes(lower)) add(below, q, a);
  }
  const other = (list: AppResource[] | undefined, a: AppResource) => list?.find((b) => b.spec.tenant !== a.spec.tenant);
  for (const { a, p } of withPath) {
    const lower = p.dir.toLowerCase();
    if (!p.dir.startsWith(`${PAYLOAD_ROOT}/`)) {
      report(ctx, a, p.field, 'payload-path-outside-sites', `"${p.dir}" is not under ${PAYLOAD_ROOT}/: an app's files come from a directory under ${PAYLOAD_ROOT}/ of the fleet`, `Move the files to ${PAYLOAD_ROOT}/<name>/ and point the app there: every other directory is the operator's (tenants/, nodes/, templates/, ...).`);
      continue;
    }
    const doc = docDirs.get(lower);
    if (doc) {
      report(ctx, a, p.field, 'payload-path-has-fleet-documents', `"${p.dir}" holds the fleet document ${doc}, which would be shipped and served with the app's files`, 'Keep fleet documents out of app directories.');
      continue;
    }
    const inside = prefixes(lower).slice(0, -1).map((q) => other(exact.get(q), a)).find((b) => b !== undefined);
    const clash = other(below.get(lower), a) ?? inside;
    if (clash) {
      const theirs = payloadPath(clash)!.dir;
      const how = theirs.toLowerCase() === lower ? 'is' : inside ? 'is inside' : 'contains';
      report(ctx, a, p.field, 'payload-path-conflict', `"${p.dir}" ${how} the directory "${theirs}" of tenant "${clash.spec.tenant}" (${where(clash)})`, 'Each tenant\'s apps ship their files from their own directories under sites/: give this app a directory of its own.');
    }
  }
}
