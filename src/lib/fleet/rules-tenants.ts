import type { TenantResource } from './model.js';
import { report, type RuleContext } from './rule-context.js';

/** Each device token identifies one tenant; token names are unique; tenants without apps are flagged. */
export function tenantRules(ctx: RuleContext): void {
  const tokenOwner = new Map<string, TenantResource>();
  for (const t of ctx.m.tenants) {
    const names = new Set<string>();
    (t.spec.uplink?.tokens ?? []).forEach((tok, i) => {
      const prev = tokenOwner.get(tok.sha256);
      if (prev) report(ctx, t, ['spec', 'uplink', 'tokens', i, 'sha256'], 'token-reused', prev === t ? 'this token hash is listed twice' : `this token hash is already used by tenant "${prev.name}"`, 'Each device token must identify exactly one tenant.');
      else tokenOwner.set(tok.sha256, t);
      if (names.has(tok.name)) report(ctx, t, ['spec', 'uplink', 'tokens', i, 'name'], 'duplicate-name', `token name "${tok.name}" is used twice`);
      names.add(tok.name);
    });
    const consumers = new Set<string>();
    (t.spec.consumers ?? []).forEach((c, i) => {
      if (consumers.has(c.name)) report(ctx, t, ['spec', 'consumers', i, 'name'], 'duplicate-name', `consumer name "${c.name}" is used twice`);
      consumers.add(c.name);
    });
  }
  if (ctx.m.partial.has('App')) return;
  const withApps = new Set(ctx.m.apps.map((a) => a.spec.tenant));
  for (const t of ctx.m.tenants) if (!withApps.has(t.name)) report(ctx, t, ['metadata', 'name'], 'tenant-unused', `tenant "${t.name}" has no apps`, undefined, 'warning');
}
