import { parse } from 'yaml';
import type { KongEntityChange, KongFieldChange } from './types.js';
import { isSecretField, REDACTED } from './redact.js';

/** Nested arrays that are entities of their own, by the key they sit under. */
const NESTED = ['routes', 'plugins', 'targets', 'keyauth_credentials', 'basicauth_credentials', 'hmacauth_credentials', 'jwt_secrets', 'oauth2_credentials', 'acls'];
const TOP = ['services', 'routes', 'upstreams', 'consumers', 'plugins', 'certificates', 'ca_certificates', 'vaults', 'consumer_groups'];

interface Entity {
  kind: string;
  name: string;
  fields: Record<string, unknown>;
}

function label(kind: string, e: Record<string, unknown>): string {
  const n = e.name ?? e.username ?? e.target ?? e.group ?? e.prefix ?? e.id;
  return typeof n === 'string' || typeof n === 'number' ? String(n) : '?';
}

function collect(doc: unknown): Map<string, Entity> {
  const out = new Map<string, Entity>();
  const walk = (kind: string, list: unknown, parent: string) => {
    if (!Array.isArray(list)) return;
    for (const raw of list) {
      if (!raw || typeof raw !== 'object') continue;
      const e = raw as Record<string, unknown>;
      const name = (parent ? parent + ' > ' : '') + label(kind, e);
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(e)) {
        if (NESTED.includes(k) && Array.isArray(v)) walk(k, v, name);
        else fields[k] = v;
      }
      out.set(`${kind}\0${name}`, { kind, name, fields });
    }
  };
  if (doc && typeof doc === 'object') for (const k of TOP) walk(k, (doc as Record<string, unknown>)[k], '');
  return out;
}

function flatten(v: unknown, prefix: string, out: Record<string, unknown>): void {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = v;
}

function fieldChanges(kind: string, a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): KongFieldChange[] {
  const fa: Record<string, unknown> = {};
  const fb: Record<string, unknown> = {};
  flatten(a ?? {}, '', fa);
  flatten(b ?? {}, '', fb);
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  const out: KongFieldChange[] = [];
  for (const k of keys) {
    if (JSON.stringify(fa[k]) === JSON.stringify(fb[k])) continue;
    const secret = isSecretField(kind, k);
    const c: KongFieldChange = { field: k };
    if (k in fa) c.old = secret ? REDACTED : fa[k];
    if (k in fb) c.new = secret ? REDACTED : fb[k];
    if (secret) c.redacted = true;
    out.push(c);
  }
  return out;
}

/** Kong diff by entity (added / changed / removed, with the changed fields), secrets redacted by position. */
export function kongDiff(oldYml: string | undefined, newYml: string | undefined): KongEntityChange[] {
  const a = collect(oldYml ? safeParse(oldYml) : undefined);
  const b = collect(newYml ? safeParse(newYml) : undefined);
  const out: KongEntityChange[] = [];
  for (const [k, e] of b) {
    const old = a.get(k);
    if (!old) out.push({ kind: e.kind, name: e.name, change: 'added', fields: fieldChanges(e.kind, undefined, e.fields) });
    else {
      const f = fieldChanges(e.kind, old.fields, e.fields);
      if (f.length) out.push({ kind: e.kind, name: e.name, change: 'changed', fields: f });
    }
  }
  for (const [k, e] of a) if (!b.has(k)) out.push({ kind: e.kind, name: e.name, change: 'removed', fields: fieldChanges(e.kind, e.fields, undefined) });
  return out.sort((x, y) => (x.kind + x.name < y.kind + y.name ? -1 : 1));
}

function safeParse(text: string): unknown {
  try {
    return parse(text, { maxAliasCount: 100 });
  } catch {
    return undefined;
  }
}
