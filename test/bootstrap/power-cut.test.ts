import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApps, writeTestFleet, type TestApp } from '../apply/helpers.js';
import { cli, json } from '../helpers/cli.js';
import { REPO } from '../helpers/paths.js';
import { bootNode, type NspawnNode } from '../helpers/nspawn.js';
import { freePort } from '../helpers/ports.js';
import { killAll, startAgent, waitFor, type AgentProc } from '../agent/helpers.js';

/**
 * Issue 13 on a real systemd node (Debian bookworm booted with systemd-nspawn in a network
 * namespace of its own): `trust`, `bootstrap`, `apply` with the real CLI over SSH; devices POST
 * through the node's nginx to a hub on the operator's side; the link is cut and more messages are
 * acknowledged; `current` is broken, the power is cut (SIGKILL to the container's init) and the
 * node boots with the link still down. Without any command from the operator: nginx serves the
 * last good release, the agent is active, the FastCGI app (php-cgi) answers, the spool holds every
 * acknowledged message; once the link is back, each reaches the hub exactly once.
 */
const ROOT = '/srv/edgectl';
const DOMAIN = 'www.boot.example';
const QDOMAIN = 'q.boot.example';
const PHPDOMAIN = 'php.boot.example';
const TOKEN = 'boot-device-token';
let hub: AgentProc | undefined;
let hubPort: number;
let sinkFile: string;
let dir: string;
let fleet: string;
let key: string;
let home: string;
let node: NspawnNode;

const edgectl = (args: string[], env?: Record<string, string>) => cli([...args, '--fleet', fleet], { home, env, timeout: 180_000 });
const app = (html: string): TestApp[] => [{ name: 'web', domain: DOMAIN, nodes: ['n1'], html }];
/** GET / of the app from inside the node's network namespace (works with the operator's link down too). */
async function served(): Promise<string> {
  const r = await node.inNetns(['curl', '-sS', '--max-time', '3', '-H', `Host: ${DOMAIN}`, `http://${node.address}/`]);
  return r.code === 0 ? r.stdout : `curl exit ${r.code}: ${r.stderr}`;
}
/** A device message through the node's nginx (from inside its netns): the HTTP status. */
async function post(body: string): Promise<string> {
  const r = await node.inNetns(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', `Host: ${QDOMAIN}`, '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Content-Type: application/json', '--data-binary', body, `http://${node.address}/v1/q/readings`]);
  return r.stdout;
}
async function php(): Promise<string> {
  const r = await node.inNetns(['curl', '-sS', '--max-time', '5', '-H', `Host: ${PHPDOMAIN}`, `http://${node.address}/index.php`]);
  return r.code === 0 ? r.stdout : `curl exit ${r.code}: ${r.stderr}`;
}
const sinkRecords = async () => (await readFile(sinkFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; tenant: string; body: string });
const deviceRecords = async () => (await sinkRecords()).filter((r) => r.tenant === 'acme');
async function eventually(what: () => Promise<string>, want: string, ms = 20_000): Promise<string> {
  let got = '';
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 200))) if ((got = await what()) === want) break;
  return got;
}
async function commit(msg: string): Promise<void> {
  await execa('git', ['-C', fleet, 'add', '-A']);
  await execa('git', ['-C', fleet, '-c', 'user.email=t@t.example', '-c', 'user.name=t', 'commit', '-qm', msg]);
}
const onNode = async (argv: string[]) => (await node.exec(argv)).stdout.trim();
/** The node's agent's /healthz (its device listener, from agent.json), asked inside the node's netns. */
async function healthz(): Promise<{ ok?: boolean; version?: string | null; config?: string }> {
  const conf = JSON.parse(await onNode(['cat', `${ROOT}/current/agent/agent.json`])) as { listen: string };
  const host = conf.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:');
  const r = await node.exec(['curl', '-sS', '--max-time', '3', `http://${host}/healthz`]);
  return JSON.parse(r.stdout || '{}') as never;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec-bootstrap-'));
  home = join(dir, 'home');
  key = join(dir, 'id_ed25519');
  await execa('mkdir', ['-p', home]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'edgectl-test', '-f', key]);
  node = await bootNode({ name: 'ec-boot-n1', authorizedKey: await readFile(`${key}.pub`, 'utf8'), log: (s) => process.stderr.write(`${s}\n`) });
  fleet = join(dir, 'fleet');
  const nodeDoc = `apiVersion: edgectl/v1\nkind: Node\nmetadata: { name: n1 }\nspec: { role: edge, address: ${node.address}, ssh: { user: root, port: 22 }, root: ${ROOT} }\n`;
  await writeTestFleet(fleet, { nodes: ['n1'], nodeDocs: nodeDoc, apps: app('v1\n') });
  // The hub is on the operator's side of the node's link; devices of acme post to topic readings;
  // a PHP app runs under the agent (php-cgi from Debian, on the node).
  hubPort = await freePort(node.hostIp);
  sinkFile = join(dir, 'hub-sink.jsonl');
  await writeFile(join(fleet, 'fleet.yaml'), `apiVersion: edgectl/v1\nkind: Fleet\nmetadata: { name: t }\nspec:\n  hub: { url: "http://${node.hostIp}:${hubPort}/v1/forward" }\n`);
  await writeFile(join(fleet, 'tenants.yaml'), `apiVersion: edgectl/v1\nkind: Tenant\nmetadata: { name: acme }\nspec:\n  uplink: { tokens: [{ name: devices, sha256: ${createHash('sha256').update(TOKEN).digest('hex')} }] }\n`);
  await execa('mkdir', ['-p', join(fleet, 'sites', 'php')]);
  await writeFile(join(fleet, 'sites', 'php', 'index.php'), '<?php echo "php ", PHP_VERSION, "\\n";\n');
  const other = (name: string, spec: string) => `apiVersion: edgectl/v1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  tenant: acme\n  placement: { nodes: [n1] }\n${spec}`;
  await writeFile(join(fleet, 'apps-more.yaml'), [
    other('q', `  type: static\n  domains: [${QDOMAIN}]\n  static: { path: sites/web }\n  uplink: { topics: [readings] }\n`),
    other('php', `  type: fastcgi\n  domains: [${PHPDOMAIN}]\n  fastcgi: { path: sites/php, command: [php-cgi] }\n`),
  ].join('---\n'));
  await execa('git', ['init', '-q', fleet]);
  await commit('v1');
}, 1_500_000); // the first run makes the cached Debian root (debootstrap): minutes

afterAll(async () => {
  await killAll();
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edgectl bootstrap on a real systemd node, then a power cut', { timeout: 240_000 }, () => {
  it('installs the agent as a service, twice without change, and the node survives a power cut offline', async () => {
    { const r = await edgectl(['trust', 'n1', '-i', key]); expect(r.code, r.stderr).toBe(0); }
    await commit('trust n1');

    const first = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key]);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const r1 = json(first).nodes[0];
    expect(r1).toMatchObject({ node: 'n1', status: 'installed', runtime: '/usr/local/bin/node' });
    expect(r1.changed).toEqual(expect.arrayContaining(['agent', 'current', 'credential', 'unit', 'enabled']));
    expect(r1.version).toMatch(/^[0-9a-f]{20}$/);
    // The credential was born on the node, 0600, and only its sha256 came back.
    expect(await onNode(['stat', '-c', '%a', `${ROOT}/secrets/agent-token`])).toBe('600');
    const token = await onNode(['cat', `${ROOT}/secrets/agent-token`]);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(r1.credentialSha256).toBe(createHash('sha256').update(token).digest('hex'));
    expect(first.stdout).not.toContain(token);
    expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(r1.version);
    expect(await onNode(['systemctl', 'is-active', 'edgectl-agent.service'])).toBe('active');
    expect(await onNode(['systemctl', 'is-enabled', 'edgectl-agent.service'])).toBe('enabled');
    // No release yet, so no /healthz: the gate was the new build's own state line, from the service's main pid.
    const mainPid = await onNode(['systemctl', 'show', '-p', 'MainPID', '--value', 'edgectl-agent.service']);
    expect(await onNode(['cat', `${ROOT}/run/agent.state`])).toBe(`${mainPid} ${r1.version} waiting`);
    const verify = await node.exec(['systemd-analyze', 'verify', '/etc/systemd/system/edgectl-agent.service']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr).not.toMatch(/edgectl-agent\.service:/);

    // Only the hash went into the fleet: the node's document, as a change to review and commit.
    expect(r1.recordedIn).toBe('nodes.yaml');
    const diff = (await execa('git', ['-C', fleet, 'diff', '-U0'])).stdout;
    expect(diff).toContain(`credential: { sha256: ${r1.credentialSha256} }`);
    expect(diff.split('\n').filter((l) => /^[-+][^-+]/.test(l))).toHaveLength(2);
    await commit('record n1 credential');
    // The hub accepts n1 by the credential's hash, as render derives it for a fleet's own hub.
    hub = await startAgent('hub', hubPort, await freePort('127.0.0.1'), ['--role', 'hub', '--data', join(dir, 'hub'), '--sink', `file:${sinkFile}`, '--accept-forward', `n1:${r1.credentialSha256}`, '--topic', 'acme/readings', '--heartbeat-seconds', '0'], { host: node.hostIp, adminHost: '127.0.0.1' });

    const again = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key]);
    expect(again.code, again.stderr).toBe(0);
    expect(json(again).nodes[0]).toMatchObject({ status: 'unchanged', changed: [], version: r1.version, credentialSha256: r1.credentialSha256 });

    // Two releases: v1, then v2 (good). The agent (waiting for a first agent.json) starts serving.
    { const r = await edgectl(['apply', '--yes', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    expect(await eventually(served, 'v1')).toBe('v1');
    // The agent, up since bootstrap with no release to run, found the first agent.json by itself.
    const started = async () => (/"msg":"agent running"/.test(await onNode(['journalctl', '-u', 'edgectl-agent.service', '--no-pager', '-o', 'cat'])) ? 'running' : 'not yet');
    expect(await eventually(started, 'running')).toBe('running');
    const v1 = await onNode(['readlink', `${ROOT}/current`]);
    await writeApps(fleet, app('v2\n'));
    await commit('v2');
    { const r = await edgectl(['apply', '--yes', '-i', key]); expect(r.code, r.stderr + r.stdout).toBe(0); }
    expect(await served()).toBe('v2');
    const v2 = await onNode(['readlink', `${ROOT}/good`]);
    expect(await onNode(['readlink', `${ROOT}/current`])).toBe(v2);
    expect(v2).not.toBe(v1);

    // The FastCGI app runs under the agent; devices post, and the messages reach the hub.
    await waitFor(async () => /^php \d+\.\d+/.test(await php()), 20_000, 'the PHP page through nginx and php-cgi');
    for (let i = 0; i < 5; i++) expect(await post(JSON.stringify({ n: i, phase: 'online' }))).toBe('202');
    await waitFor(async () => (await deviceRecords()).length === 5, 30_000, 'the first 5 messages at the hub');

    // The link to the core goes: the node keeps acknowledging, every message synced to its spool.
    await node.link(false);
    expect((await execa('ping', ['-c', '1', '-W', '1', node.address], { reject: false })).exitCode).not.toBe(0);
    for (let i = 5; i < 12; i++) expect(await post(JSON.stringify({ n: i, phase: 'offline' }))).toBe('202');

    // An apply that died between switching current (back to v1) and its health check, then the power goes.
    await node.exec(['sh', '-c', `ln -sfn ${v1} ${ROOT}/current.tmp && mv -T ${ROOT}/current.tmp ${ROOT}/current`]);
    await node.powerCut();
    await node.boot();

    // Nobody touches it: the agent's reset-to-work put current back to good and started nginx.
    expect(await eventually(served, 'v2')).toBe('v2');
    expect(await eventually(() => onNode(['systemctl', 'is-active', 'edgectl-agent.service']), 'active')).toBe('active');
    expect(await onNode(['readlink', `${ROOT}/current`])).toBe(v2);
    const journal = () => onNode(['journalctl', '-b', '-u', 'edgectl-agent.service', '--no-pager', '-o', 'cat']);
    expect(await journal()).toMatch(/"msg":"reset-to-work".*"release":"switched"/);
    const running = async () => (/"msg":"agent running"/.test(await journal()) ? 'running' : 'not yet');
    expect(await eventually(running, 'running')).toBe('running');
    // The FastCGI app is back by itself, and the spool holds the 7 acknowledged while offline.
    await waitFor(async () => /^php \d+\.\d+/.test(await php()), 20_000, 'the PHP page after the power cut');
    const conf = JSON.parse(await onNode(['cat', `${ROOT}/current/agent/agent.json`])) as { admin: string; dataDir: string };
    const adminToken = await onNode(['cat', `${conf.dataDir}/admin-token`]);
    const spooled = async () => {
      const r = await node.inNetns(['curl', '-sS', '--max-time', '3', '-H', `Authorization: Bearer ${adminToken}`, `http://${conf.admin}/status`]);
      const st = JSON.parse(r.stdout || '{}') as { queues?: { tenant: string; depth: number }[] };
      return String((st.queues ?? []).filter((q) => q.tenant === 'acme').reduce((n, q) => n + q.depth, 0));
    };
    expect(await eventually(spooled, '7')).toBe('7');
    expect(await healthz()).toMatchObject({ ok: true, version: r1.version });
    expect((await deviceRecords()).length).toBe(5);

    // The link comes back: every acknowledged message reaches the hub, each exactly once.
    await node.link(true);
    await waitFor(async () => (await deviceRecords()).length >= 12, 60_000, 'the 7 offline messages at the hub');
    await new Promise((r) => setTimeout(r, 1500)); // a duplicate would arrive now
    const got = await deviceRecords();
    expect(got).toHaveLength(12);
    expect(new Set(got.map((m) => m.id)).size).toBe(12);
    expect(got.map((m) => (JSON.parse(m.body) as { n: number }).n).sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
    expect(await eventually(spooled, '0')).toBe('0');
    expect(hub?.proc.exitCode, 'the hub kept running').toBeNull();
  });

  it('rolls an agent upgrade that crashes at start back to the previous agent', async () => {
    const before = await onNode(['readlink', `${ROOT}/agent/current`]);
    const bad = join(dir, 'bad-agent');
    await cp(join(REPO, 'dist', 'agent'), bad, { recursive: true });
    await writeFile(join(bad, 'edgectl-agent.cjs'), "process.stderr.write('edgectl-agent: boom at start\\n'); process.exit(1);\n");
    const r = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key], { EDGECTL_AGENT_DIST: bad });
    expect(r.code, r.stderr).toBe(1);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ status: 'rolled-back', error: { code: 'EDGECTL_BOOTSTRAP' } });
    expect(res.version).not.toBe(before);
    expect(res.error.output).toContain('boom at start');
    expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(before);
    expect(await eventually(() => onNode(['systemctl', 'is-active', 'edgectl-agent.service']), 'active')).toBe('active');
    expect(await served()).toBe('v2');
    // The good agent is what runs: a bootstrap of the real build finds nothing to change.
    const again = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key]);
    expect(json(again).nodes[0], again.stderr).toMatchObject({ status: 'unchanged', version: before });
  });

  it('rolls back an upgrade whose agent starts but never answers /healthz (a build that listens nowhere)', async () => {
    const before = await onNode(['readlink', `${ROOT}/agent/current`]);
    const hung = join(dir, 'hung-agent');
    await cp(join(REPO, 'dist', 'agent'), hung, { recursive: true });
    // Stays up (the old 3 s check passed it), writes no state line, answers nothing.
    await writeFile(join(hung, 'edgectl-agent.cjs'), "process.stderr.write('edgectl-agent: up, serving nothing\\n'); setInterval(() => {}, 1 << 30);\n");
    const t0 = Date.now();
    const r = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key], { EDGECTL_AGENT_DIST: hung });
    const took = Date.now() - t0;
    expect(r.code, r.stderr).toBe(1);
    const res = json(r).nodes[0];
    expect(res).toMatchObject({ status: 'rolled-back', error: { code: 'EDGECTL_BOOTSTRAP', message: expect.stringContaining('did not come up healthy') } });
    expect(res.version).not.toBe(before);
    expect(res.error.output).toContain(`no /healthz ok with version ${res.version}`);
    expect(res.error.output).toContain('up, serving nothing');
    expect(took, 'bounded by the clock: 15 s for the new build, then the old one comes back').toBeLessThan(60_000);
    expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(before);
    // The old build is what answers now.
    expect(await healthz()).toMatchObject({ ok: true, version: before });
    expect(await served()).toBe('v2');
  });

  it('before any release, an upgrade whose agent never writes its state line is rolled back, and the old agent waits again', async () => {
    const before = await onNode(['readlink', `${ROOT}/agent/current`]);
    const hung = join(dir, 'hung-agent'); // the previous test's build: up, silent
    // A node with no release (reset-to-work finds neither current nor good): no /healthz to ask.
    await node.exec(['sh', '-c', `mv -T ${ROOT}/current ${ROOT}/current.keep && mv -T ${ROOT}/good ${ROOT}/good.keep`]);
    try {
      const r = await edgectl(['bootstrap', 'n1', '--yes', '--json', '-i', key], { EDGECTL_AGENT_DIST: hung });
      expect(r.code, r.stderr).toBe(1);
      const res = json(r).nodes[0];
      expect(res).toMatchObject({ status: 'rolled-back' });
      expect(res.error.output).toContain(`run/agent.state did not name pid`);
      expect(res.error.output).toContain(`and version ${res.version} within 15 s`);
      expect(await onNode(['readlink', `${ROOT}/agent/current`])).toBe(before);
      // The old build came back and passed the same gate: its state line, from the service's main pid.
      const mainPid = await onNode(['systemctl', 'show', '-p', 'MainPID', '--value', 'edgectl-agent.service']);
      expect(await onNode(['cat', `${ROOT}/run/agent.state`])).toBe(`${mainPid} ${before} waiting`);
    } finally {
      await node.exec(['sh', '-c', `mv -T ${ROOT}/current.keep ${ROOT}/current; mv -T ${ROOT}/good.keep ${ROOT}/good; systemctl restart edgectl-agent.service`]);
    }
    await waitFor(async () => (await healthz().catch(() => ({}) as { version?: string })).version === before, 20_000, 'the agent serving the release again');
    expect(await served()).toBe('v2');
  });
});
