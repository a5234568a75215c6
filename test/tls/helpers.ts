import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { encryptTo, newIdentity, recipientOf } from '../../src/lib/secrets/age.js';

/** A CA of the test's own (openssl, P-256), whose key stays in `dir`. */
export function makeCa(dir: string, name = 'edgectl test CA'): { cert: string; key: string } {
  const cert = path.join(dir, `${name.replace(/\W+/g, '-')}.pem`);
  const key = `${cert}.key`;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { cert, key };
}

/** A leaf for `names`, signed by `ca`: its PEM chain (leaf, then the CA) and its plaintext key. */
export function makeLeaf(dir: string, ca: { cert: string; key: string }, names: string[], o: { days?: number; ocsp?: boolean } = {}): { chain: Buffer; key: Buffer } {
  const base = path.join(dir, `${names[0].replace(/\W+/g, '-')}-${Math.random().toString(36).slice(2, 8)}`);
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`], { stdio: 'pipe' });
  const ext = [`subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, 'basicConstraints=critical,CA:FALSE', 'extendedKeyUsage=serverAuth', ...(o.ocsp ? ['authorityInfoAccess=OCSP;URI:http://ocsp.test.example/'] : [])];
  execFileSync('bash', ['-c', 'printf "%s\\n" "${@:2}" > "$1"', 'x', `${base}.ext`, ...ext]);
  execFileSync('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${base}.pem`, '-days', String(o.days ?? 30), '-extfile', `${base}.ext`], { stdio: 'pipe' });
  return { chain: Buffer.concat([execFileSync('cat', [`${base}.pem`]), execFileSync('cat', [ca.cert])]), key: execFileSync('cat', [`${base}.key`]) };
}

/** A fresh age identity in a file, and its recipient. */
export async function makeIdentity(file: string): Promise<{ file: string; identity: string; recipient: string }> {
  const identity = await newIdentity();
  await writeFile(file, `# test identity\n${identity}\n`, { mode: 0o600 });
  return { file, identity, recipient: await recipientOf(identity) };
}

export interface TlsApp {
  name: string;
  domains: string[];
  redirect?: boolean;
  hsts?: number;
  ocsp?: boolean;
}

/**
 * A one-edge fleet whose apps are static sites served over HTTPS, each with a certificate from
 * `ca` and its key encrypted to `recipients`. Returns each app's plaintext key (for leak checks).
 */
export async function writeTlsFleet(dir: string, o: { ca: { cert: string; key: string }; recipients: string[]; apps: TlsApp[]; plain?: string[] }): Promise<Map<string, Buffer>> {
  await mkdir(path.join(dir, 'tls'), { recursive: true });
  await writeFile(path.join(dir, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://127.0.0.1:9/v1/forward" }\n  secrets: { recipients: [${o.recipients.join(', ')}] }\n`);
  await writeFile(path.join(dir, 'tenants.yaml'), 'apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec: {}\n');
  await writeFile(path.join(dir, 'nodes.yaml'), 'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: edge-1 }\nspec: { role: edge, address: 192.0.2.1 }\n');
  const keys = new Map<string, Buffer>();
  const docs: string[] = [];
  for (const a of o.apps) {
    await mkdir(path.join(dir, 'sites', a.name), { recursive: true });
    await writeFile(path.join(dir, 'sites', a.name, 'index.html'), `<h1>${a.name} over TLS</h1>\n`);
    const leaf = makeLeaf(path.dirname(o.ca.cert), o.ca, a.domains, { ocsp: a.ocsp });
    await writeFile(path.join(dir, 'tls', `${a.name}.pem`), leaf.chain);
    await writeFile(path.join(dir, 'tls', `${a.name}.key.age`), await encryptTo(o.recipients, leaf.key));
    keys.set(a.name, leaf.key);
    const tls = [`certificate: tls/${a.name}.pem`, `key: tls/${a.name}.key.age`, ...(a.redirect === false ? ['redirect: false'] : []), ...(a.hsts ? [`hsts: { maxAge: ${a.hsts} }`] : [])];
    docs.push(`apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${a.name} }\nspec:\n  tenant: acme\n  type: static\n  domains: [${a.domains.join(', ')}]\n  static: { path: sites/${a.name} }\n  tls: { ${tls.join(', ')} }\n`);
  }
  for (const p of o.plain ?? []) {
    await mkdir(path.join(dir, 'sites', p), { recursive: true });
    await writeFile(path.join(dir, 'sites', p, 'index.html'), `<h1>${p} in plain HTTP</h1>\n`);
    docs.push(`apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${p} }\nspec:\n  tenant: acme\n  type: static\n  domains: [${p}.acme.example]\n  static: { path: sites/${p} }\n`);
  }
  await writeFile(path.join(dir, 'apps.yaml'), docs.join('---\n'));
  return keys;
}

export interface TlsAnswer { status: number; headers: Record<string, string | string[] | undefined>; body: string; fingerprint: string; authorized: boolean; protocol: string | null }

/** GET over HTTPS to a live nginx, SNI and Host `name`, the chain checked against `ca` only. */
export function tlsGet(addr: string, port: number, name: string, ca: Buffer, urlPath = '/'): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: addr, port, path: urlPath, servername: name, ca, agent: false, timeout: 10_000, headers: { host: name, connection: 'close' } }, (res) => {
      // Read off the socket now: with Connection: close it may be gone by 'end' (its certificate with it).
      const s = res.socket as TLSSocket;
      const peer = { fingerprint: s.getPeerCertificate().fingerprint256, authorized: s.authorized, protocol: s.getProtocol() };
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ...peer }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The base64 body lines of a PEM key: what a leak of its bytes would show in any output. */
export function keyLines(pem: Buffer): string[] {
  return pem.toString().split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
}

/** The three nodes most hop tests use: a core, a relay and an edge behind it (documentation addresses). */
export const HOP_NODES = [
  'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: core-1 }\nspec: { role: core, address: 192.0.2.10 }',
  'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: relay-1 }\nspec: { role: relay, address: 198.51.100.7 }',
  'apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: edge-1 }\nspec: { role: edge, address: 203.0.113.5, via: [relay-1] }',
].join('\n---\n') + '\n';

/** A fleet with hop TLS (fleet.yaml: hub URL, `hops.tls`, the age recipient; nodes.yaml: `nodes`, default HOP_NODES). */
export async function writeHopFleet(fleet: string, o: { recipient: string; hubUrl?: string; tls?: string; nodes?: string }): Promise<void> {
  await writeFile(path.join(fleet, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "${o.hubUrl ?? 'https://hub.t.example/v1/forward'}" }\n  hops: { tls: ${o.tls ?? '{}'} }\n  secrets: { recipients: [${o.recipient}] }\n`);
  await writeFile(path.join(fleet, 'nodes.yaml'), o.nodes ?? HOP_NODES);
}
