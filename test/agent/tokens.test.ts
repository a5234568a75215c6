import { describe, expect, it } from 'vitest';
import { sha256hex, tenantForToken, type TenantRuntime } from '../../src/lib/agent/context.js';

describe('tenantForToken', () => {
  const acme: TenantRuntime = { name: 'acme', spoolBytes: 1, topics: new Map() };
  const ctx = () => ({ tenantsByHash: new Map([[sha256hex('good'), acme]]), knownTokens: new Map<string, TenantRuntime>() });

  it('finds the tenant by the sha256 of the token and remembers only tokens that matched', () => {
    const c = ctx();
    expect(tenantForToken(c, 'good')).toBe(acme);
    expect(tenantForToken(c, 'bad')).toBeUndefined();
    expect([...c.knownTokens.keys()]).toEqual(['good']);
    // Remembered: found again even without the hash table.
    c.tenantsByHash.clear();
    expect(tenantForToken(c, 'good')).toBe(acme);
    expect(tenantForToken(c, 'bad')).toBeUndefined();
  });

  it('keeps at most 1024 remembered tokens', () => {
    const c = ctx();
    for (let i = 0; i < 3000; i++) {
      c.tenantsByHash.set(sha256hex(`t${i}`), acme);
      expect(tenantForToken(c, `t${i}`)).toBe(acme);
      expect(c.knownTokens.size).toBeLessThanOrEqual(1024);
    }
  });
});
