import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNodeAnswer } from '../../src/lib/status/parse.js';
import { statusOfFacts } from '../../src/lib/status/live.js';
import { MAX_CERT_B64 } from '../../src/lib/status/script.js';
import { makeCa, makeLeaf } from './helpers.js';

/** status's certificate lines: the leaf's base64 from the node, parsed here; anything else is dropped. */
describe('status: certificates in the current release', () => {
  it('reads the leaf\'s expiry, drops what is not a certificate or not an app id, and flags one under 14 days', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ec-acme-status-'));
    try {
      const ca = makeCa(dir);
      const leaf = makeLeaf(dir, ca, ['www.shop.example'], { days: 5 });
      const pem = leaf.chain.toString();
      const b64 = pem.split('-----END CERTIFICATE-----')[0].split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      const end = new Date(Date.parse(new X509Certificate(Buffer.from(b64, 'base64')).validTo)).toISOString();
      const caB64 = (await readFile(ca.cert, 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      const out = ['v\t1', `cert\tshop.www\t${b64}`, `cert\tshop.ca\t${caB64}`, 'cert\tshop.junk\tAAAAAAAAAAAAAAAAAAAAAAAA', `cert\t../etc\t${b64}`, `cert\tshop.long\t${'A'.repeat(MAX_CERT_B64 + 4)}`, ''].join('\n');
      const f = parseNodeAnswer(out, 'n0nce');
      expect([...f.certs.keys()].sort()).toEqual(['shop.ca', 'shop.www']);
      expect(f.certs.get('shop.www')).toBe(end);
      const s = statusOfFacts({ ...f, certs: new Map([['shop.www', end]]) }, { node: { name: 'e1', role: 'edge' } as never, path: 'local' }, null, Date.parse(end) - 4.5 * 86_400_000);
      expect(s.certs).toEqual([{ app: 'shop.www', notAfter: end, days: 4 }]);
      expect(s.problems).toContain('certificate shop.www expires in 4 day(s)');
      const later = statusOfFacts({ ...f, certs: new Map([['shop.www', end]]) }, { node: { name: 'e1', role: 'edge' } as never, path: 'local' }, null, Date.parse(end) + 1000);
      expect(later.problems).toContain('certificate shop.www expired');
      const none = statusOfFacts({ ...f, certs: new Map() }, { node: { name: 'e1', role: 'edge' } as never, path: 'local' }, null);
      expect(none.certs).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
