import type { KongEntityChange, Plan } from '../plan/types.js';
import type { Paint } from './validate-report.js';

function colourPatch(patch: string, c: Paint): string {
  return patch.split('\n').map((l) => (l.startsWith('+++') || l.startsWith('---') ? c.bold(l) : l.startsWith('+') ? c.green(l) : l.startsWith('-') ? c.red(l) : l.startsWith('@@') ? c.cyan(l) : l)).join('\n');
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export function kongText(changes: KongEntityChange[], c: Paint): string {
  const out: string[] = [];
  for (const e of changes) {
    const mark = e.change === 'added' ? c.green('+') : e.change === 'removed' ? c.red('-') : c.yellow('~');
    out.push(`  ${mark} ${e.kind.replace(/s$/, '')} ${c.bold(e.name)} ${c.dim(e.change)}`);
    if (e.change === 'changed') for (const f of e.fields) out.push(`      ${f.field}: ${c.red(show(f.old ?? '(unset)'))} → ${c.green(show(f.new ?? '(unset)'))}`);
  }
  return out.join('\n');
}

/** `plan --diff`: unified diffs per nginx file and Kong by entity, per changed node. Secrets were redacted in the plan. */
export function planDiffText(plan: Plan, c: Paint): string {
  const out: string[] = [];
  for (const n of plan.nodes) {
    if (!n.diff || (n.diff.files.length === 0 && !n.diff.kong?.length)) continue;
    out.push(c.bold(`# ${n.node}: ${n.current.release ?? 'none'} → ${n.desired.release}`));
    for (const f of n.diff.files) out.push(colourPatch(f.patch.replace(/^=+\n/m, ''), c).trimEnd());
    if (n.diff.kong?.length) out.push(c.bold('kong/kong.yml (by entity):'), kongText(n.diff.kong, c));
    const others = [...n.files.added, ...n.files.changed, ...n.files.removed].filter((p) => !p.startsWith('nginx/') && p !== 'kong/kong.yml');
    if (others.length) out.push(c.dim(`other files: ${others.length} (${others.slice(0, 8).join(', ')}${others.length > 8 ? ', …' : ''})`));
    out.push('');
  }
  return out.join('\n');
}
