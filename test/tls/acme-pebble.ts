import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { freePorts } from '../helpers/ports.js';

/**
 * Debian's pebble (an ACME server) and pebble-challtestsrv (its DNS server, whose management API
 * sets TXT records) on loopback ports of the test's own. pebble's HTTPS API uses a certificate
 * from a CA the test makes (Debian ships no test certificate); clients trust that CA explicitly.
 */
export interface Pebble {
  directory: string;
  /** PEM of the CA that signed pebble's own HTTPS certificate (for spec.acme.directoryCa). */
  apiCa: Buffer;
  /** challtestsrv's management URL (the DNS-01 hook posts to it). */
  challtest: string;
  /** pebble's issuing root, from its management endpoint /roots/0. */
  root(): Promise<Buffer>;
  /** Stops pebble and challtestsrv (the processes this helper started, by their handles). */
  stop(): Promise<void>;
}

function started(p: ChildProcess, name: string, match: RegExp, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${name} did not start: ${out.slice(-500)}`)), timeoutMs);
    const on = (b: Buffer) => {
      out += b.toString();
      if (match.test(out)) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`${name} exited ${c}: ${out.slice(-500)}`));
    });
  });
}

export async function startPebble(dir: string, addr: string, o: { validitySeconds: number }): Promise<Pebble> {
  const [api, mgmt, vaHttp, vaTls, dns, ctMgmt] = await freePorts(6, addr);
  // A CA of the test's own and pebble's API certificate for the loopback address (an IP SAN).
  const ca = path.join(dir, 'pebble-api-ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${ca}.key`, '-out', ca, '-days', '2', '-subj', '/CN=pebble API test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'pipe' });
  const leaf = path.join(dir, 'pebble-api');
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', '/CN=pebble'], { stdio: 'pipe' });
  await writeFile(`${leaf}.ext`, `subjectAltName=IP:${addr},DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  execFileSync('openssl', ['x509', '-req', '-in', `${leaf}.csr`, '-CA', ca, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${leaf}.pem`, '-days', '2', '-extfile', `${leaf}.ext`], { stdio: 'pipe' });
  const config = path.join(dir, 'pebble-config.json');
  await writeFile(config, JSON.stringify({
    pebble: {
      listenAddress: `${addr}:${api}`, managementListenAddress: `${addr}:${mgmt}`, certificate: `${leaf}.pem`, privateKey: `${leaf}.key`,
      httpPort: vaHttp, tlsPort: vaTls, ocspResponderURL: '', externalAccountBindingRequired: false, certificateValidityPeriod: o.validitySeconds,
    },
  }));
  const ct = spawn('pebble-challtestsrv', ['-dns01', `${addr}:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `${addr}:${ctMgmt}`, '-defaultIPv4', addr, '-defaultIPv6', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  await started(ct, 'pebble-challtestsrv', /Starting management server/i);
  // PEBBLE_AUTHZREUSE=0: pebble reuses a valid authorization for half the orders by default, and a
  // reused one needs no DNS-01 challenge, so the hook is not run: a test of a failing hook then
  // passed or failed on pebble's coin (CI saw exit 2, renewed, once in a few runs).
  const pb = spawn('pebble', ['-config', config, '-dnsserver', `${addr}:${dns}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' } });
  await started(pb, 'pebble', /Listening on/i);
  const apiCa = await readFile(ca);
  return {
    directory: `https://${addr}:${api}/dir`,
    apiCa,
    challtest: `http://${addr}:${ctMgmt}`,
    root: () => new Promise((resolve, reject) => {
      https.get({ host: addr, port: mgmt, path: '/roots/0', ca: apiCa, servername: 'localhost' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`roots/0: ${res.statusCode}`))));
      }).on('error', reject);
    }),
    async stop() {
      for (const p of [pb, ct]) {
        if (p.exitCode === null && p.signalCode === null) {
          const gone = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          await gone;
        }
      }
    },
  };
}

/** A DNS-01 hook for the tests: sets or clears the TXT record through challtestsrv's management API, from its environment. */
export const HOOK_SCRIPT = `
const [url, log] = process.argv.slice(2);
const e = process.env;
const host = e.EDGECTL_ACME_RECORD + '.';
const body = e.EDGECTL_ACME_ACTION === 'set' ? { host, value: e.EDGECTL_ACME_VALUE } : { host };
const r = await fetch(url + (e.EDGECTL_ACME_ACTION === 'set' ? '/set-txt' : '/clear-txt'), { method: 'POST', body: JSON.stringify(body) });
if (log) (await import('node:fs')).appendFileSync(log, e.EDGECTL_ACME_ACTION + ' ' + e.EDGECTL_ACME_DOMAIN + ' ' + e.EDGECTL_ACME_RECORD + '\\n');
if (!r.ok) { console.error('challtestsrv said ' + r.status); process.exit(1); }
`;
