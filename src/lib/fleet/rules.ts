import type { Problem } from './problems.js';
import type { RuleContext, RuleInput } from './rule-context.js';
import { resolveNodes } from './model.js';
import { appRules } from './rules-apps.js';
import { credentialRules } from './rules-credentials.js';
import { endpointRules, viaRules } from './rules-nodes.js';
import { tenantRules } from './rules-tenants.js';
import { tunnelKeyRules } from './rules-tunnel.js';
import { upstreamRules } from './rules-upstreams.js';
import { secretRules, tlsRules } from './rules-tls.js';
import { hopTlsRules } from './rules-hop-tls.js';
import { domainZoneRules, payloadPathRules } from './rules-tenancy.js';

/**
 * Cross-reference rules: stage two of validation, on documents that each passed their schema.
 * Each rule is a small function adding problems; none throws, and none is quadratic in the
 * fleet's size (see bench/validate.ts).
 */
export function crossRules(m: RuleInput): Problem[] {
  const ctx: RuleContext = { m, nodes: new Map(m.nodes.map((n) => [n.name, n])), resolved: resolveNodes(m.nodes, m.defaults), tenants: new Map(m.tenants.map((t) => [t.name, t])), out: [] };
  viaRules(ctx);
  tunnelKeyRules(ctx);
  endpointRules(ctx);
  appRules(ctx);
  tenantRules(ctx);
  credentialRules(ctx);
  upstreamRules(ctx);
  domainZoneRules(ctx);
  payloadPathRules(ctx);
  secretRules(ctx);
  tlsRules(ctx);
  hopTlsRules(ctx);
  return ctx.out;
}
