import type { AppResource } from '../fleet/model.js';
import { parseChain } from '../secrets/chain.js';

/** Under this many days to expiry, plan and validate warn (certs renew renews at 30 by default). */
export const EXPIRY_WARN_DAYS = 14;
export const DAY_MS = 86_400_000;

export interface CertExpiry {
  app: string;
  tenant: string;
  file: string;
  acme: boolean;
  /** ISO time the leaf expires; absent when there is no certificate yet (an ACME app before its first issue). */
  notAfter?: string;
  /** Whole days left (negative once expired). */
  days?: number;
  state: 'ok' | 'expiring' | 'expired' | 'missing' | 'unreadable';
}

/** Days to expiry of every TLS app's certificate, read from the fleet (no key needed). */
export async function certExpiries(apps: readonly AppResource[], read: (file: string) => Promise<Buffer | undefined>, now = Date.now(), warnDays = EXPIRY_WARN_DAYS): Promise<CertExpiry[]> {
  const out: CertExpiry[] = [];
  for (const a of apps) {
    const tls = a.spec.tls;
    if (!tls) continue;
    const base = { app: a.name, tenant: a.spec.tenant, file: tls.certificate, acme: tls.acme ?? false };
    const bytes = await read(tls.certificate);
    if (!bytes) {
      out.push({ ...base, state: 'missing' });
      continue;
    }
    const chain = parseChain(bytes);
    if (typeof chain === 'string') {
      out.push({ ...base, state: 'unreadable' });
      continue;
    }
    const end = Date.parse(chain[0].validTo);
    const days = Math.floor((end - now) / DAY_MS);
    out.push({ ...base, notAfter: new Date(end).toISOString(), days, state: end <= now ? 'expired' : end - now < warnDays * DAY_MS ? 'expiring' : 'ok' });
  }
  return out;
}

/** One line per certificate for plan's text output, and the warnings. */
export function expiryLines(list: readonly CertExpiry[]): { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  for (const c of list) {
    const who = `${c.tenant}/${c.app}`;
    if (c.state === 'missing') {
      lines.push(`  ${who}: no certificate yet (${c.file})`);
      warnings.push(c.acme ? `${who}: no certificate yet, served over HTTP only: run \`edgectl certs renew\`` : `${who}: certificate ${c.file} is missing`);
    } else if (c.state === 'unreadable') {
      lines.push(`  ${who}: ${c.file} is not a PEM chain`);
    } else {
      lines.push(`  ${who}: ${c.days} day(s) to expiry (${c.notAfter}, ${c.file}${c.acme ? ', ACME' : ''})`);
      if (c.state === 'expired') warnings.push(`${who}: certificate ${c.file} expired on ${c.notAfter}${c.acme ? ': run `edgectl certs renew`' : ''}`);
      else if (c.state === 'expiring') warnings.push(`${who}: certificate ${c.file} expires in ${c.days} day(s)${c.acme ? ': run `edgectl certs renew`' : ': commit a renewed one'}`);
    }
  }
  return { lines, warnings };
}
