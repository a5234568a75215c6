import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeCa, makeIdentity, makeLeaf, writeHopFleet } from './helpers.js';
import { initFleetCa, issueHopCert } from '../../src/lib/tls-hop/fleet-ca.js';
import { secretOpener } from '../../src/lib/secrets/opener.js';

/**
 * validate with spec.hops.tls, with no age identity at all (what CI has): the fleet CA and every
 * relay's and core node's hop certificate are checked from the repo's public files, each problem
 * naming the file (or the node's document) and the rule.
 */
let dir: string, fleet: string, idFile: string;
interface Problem { severity: string; rule: string; file: string; line: number; message: string; hint?: string }
const validate = async () => {
  const r = await cli(['validate', '--fleet', fleet, '--json'], { env: { EDGECTL_AGE_IDENTITY_FILE: path.join(dir, 'none.txt'), HOME: dir } });
  return { code: r.code, stderr: r.stderr, problems: (JSON.parse(r.stdout) as { problems: Problem[] }).problems.filter((p) => p.rule.startsWith('hop-')) };
};
const secrets = () => secretOpener({ flag: idFile, env: {} });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'edgectl-hopval-'));
  fleet = path.join(dir, 'fleet');
  await mkdir(fleet);
  const id = await makeIdentity(path.join(dir, 'id.txt'));
  idFile = id.file;
  await writeHopFleet(fleet, { recipient: id.recipient });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('validate checks hop certificates without decrypting anything', { timeout: 120_000 }, () => {
  it('no CA: an error naming the CA file; no certificates: warnings naming each node\'s document', async () => {
    const v = await validate();
    expect(v.code).toBe(1);
    expect(v.problems.filter((p) => p.severity === 'error').map((p) => p.rule)).toEqual(['hop-ca-missing']);
    expect(v.problems.map((p) => [p.rule, p.file])).toEqual(expect.arrayContaining([['hop-ca-missing', 'tls/fleet-ca.pem'], ['hop-certificate-missing', 'nodes.yaml'], ['hop-certificate-missing', 'nodes.yaml']]));
    const relay = v.problems.find((p) => p.message.includes('"relay-1"'))!;
    expect(relay.line).toBe(9); // the relay's document (lines 6-9), its spec line
    expect(relay.hint).toMatch(/edgectl bootstrap relay-1.*edgectl ca issue relay-1 --name 198\.51\.100\.7/);
    expect(v.stderr).not.toMatch(/\n\s+at /);
  });

  it('valid certificates: no problem; 30 days or fewer left: a warning', async () => {
    await initFleetCa({ fleet });
    await issueHopCert({ fleet, node: 'core-1', names: ['hub.t.example'], secrets: secrets() });
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secrets() });
    expect((await validate())).toMatchObject({ code: 0, problems: [] });
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secrets(), days: 12 });
    const v = await validate();
    expect(v.code).toBe(0);
    expect(v.problems).toEqual([expect.objectContaining({ severity: 'warning', rule: 'hop-certificate-expiring', file: 'tls/hops/relay-1.pem', message: expect.stringMatching(/relay-1\) expires in 1[12] day/) })]);
  });

  it('expired: a warning (apply renews it); for another host, from another CA, not a certificate: errors naming the file', async () => {
    const rel = path.join(fleet, 'tls/hops/relay-1.pem');
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secrets(), days: 365, notBefore: new Date(Date.now() - 400 * 86_400_000), now: new Date(Date.now() - 400 * 86_400_000) });
    let v = await validate();
    expect(v.code).toBe(0);
    expect(v.problems).toEqual([expect.objectContaining({ severity: 'warning', rule: 'hop-certificate-expired', file: 'tls/hops/relay-1.pem', message: expect.stringContaining('its senders refuse it') })]);
    const strict = await cli(['validate', '--fleet', fleet, '--strict'], { env: { HOME: dir } });
    expect(strict.code).toBe(1);
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.99'], secrets: secrets() });
    v = await validate();
    expect(v.code).toBe(1);
    expect(v.problems).toEqual([expect.objectContaining({ severity: 'error', rule: 'hop-certificate-names', message: expect.stringContaining('does not name 198.51.100.7') })]);
    const scratch = path.join(dir, 'scratch');
    await mkdir(scratch, { recursive: true });
    const other = makeLeaf(scratch, makeCa(scratch, 'another CA'), ['relay.t.example']);
    await writeFile(rel, other.chain.subarray(0, other.chain.indexOf('-----END CERTIFICATE-----') + 26));
    v = await validate();
    expect(v.problems.map((p) => p.rule).sort()).toEqual(['hop-certificate-ca', 'hop-certificate-expiring', 'hop-certificate-names']); // that leaf is for 30 days
    await writeFile(rel, 'not a certificate\n');
    v = await validate();
    expect(v.problems).toEqual([expect.objectContaining({ rule: 'hop-certificate', file: 'tls/hops/relay-1.pem', message: expect.stringContaining('holds no PEM CERTIFICATE block') })]);
    await issueHopCert({ fleet, node: 'relay-1', names: ['198.51.100.7'], secrets: secrets() });
  });

  it('a certificate of no relay or core node: a warning; a CA that is not a CA: an error', async () => {
    await writeFile(path.join(fleet, 'tls/hops/old-relay.pem'), await readFile(path.join(fleet, 'tls/hops/relay-1.pem')));
    let v = await validate();
    expect(v.code).toBe(0);
    expect(v.problems).toEqual([expect.objectContaining({ severity: 'warning', rule: 'hop-certificate-unused', file: 'tls/hops/old-relay.pem' })]);
    await rm(path.join(fleet, 'tls/hops/old-relay.pem'));
    const ca = path.join(fleet, 'tls/fleet-ca.pem');
    const saved = await readFile(ca);
    await writeFile(ca, await readFile(path.join(fleet, 'tls/hops/relay-1.pem')));
    v = await validate();
    expect(v.problems).toEqual([expect.objectContaining({ rule: 'hop-ca', file: 'tls/fleet-ca.pem', message: expect.stringContaining('is not a CA certificate') })]);
    await writeFile(ca, saved);
    expect((await validate()).problems).toEqual([]);
  });
});
