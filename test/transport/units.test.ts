import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entryMatches, fingerprint, hostName, parseKnownHosts } from '../../src/lib/transport/known-hosts.js';
import { shJoin } from '../../src/lib/transport/quote.js';
import { lookupSshConfig, parseSshConfig } from '../../src/lib/transport/ssh-config.js';

describe('shell quoting', () => {
  it('500 random words of hostile characters survive dash and bash unchanged', () => {
    const pool = [...Array.from({ length: 127 }, (_, i) => String.fromCharCode(i + 1)), 'é', '✓', '\u2028', '€'];
    const words = Array.from({ length: 500 }, () => Array.from({ length: 1 + (randomBytes(1)[0] % 24) }, () => pool[randomBytes(1)[0] % pool.length]).join(''));
    for (const sh of ['/bin/dash', '/bin/bash']) {
      const out = execFileSync(sh, ['-c', 'printf "%s\\0" ' + shJoin(words)], { encoding: 'utf8' });
      expect(out.split('\0').slice(0, -1)).toEqual(words);
    }
  });
});

describe('known_hosts matching', () => {
  const key = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
  it('plain names, [host]:port, wildcards and negation', () => {
    const [e] = parseKnownHosts(`10.0.0.*,!10.0.0.13,[edge.example]:2222 ssh-ed25519 ${key} c\n`);
    expect(entryMatches(e, '10.0.0.12')).toBe(true);
    expect(entryMatches(e, '10.0.0.13')).toBe(false);
    expect(entryMatches(e, hostName('edge.example', 2222))).toBe(true);
    expect(entryMatches(e, hostName('edge.example', 22))).toBe(false);
    expect(hostName('10.1.1.1', 22)).toBe('10.1.1.1');
  });
  it('hashed |1| entries (HMAC-SHA1 computed independently with openssl)', () => {
    // |1|salt|hmac for "[127.0.0.1]:2200" with a fixed salt, computed independently with openssl.
    const salt = Buffer.alloc(20, 7).toString('base64');
    const mac = execFileSync('openssl', ['dgst', '-sha1', '-mac', 'HMAC', '-macopt', `hexkey:${Buffer.alloc(20, 7).toString('hex')}`, '-binary'], { input: '[127.0.0.1]:2200' }).toString('base64');
    const [e] = parseKnownHosts(`|1|${salt}|${mac} ssh-ed25519 ${key}\n`);
    expect(entryMatches(e, '[127.0.0.1]:2200')).toBe(true);
    expect(entryMatches(e, '127.0.0.1')).toBe(false);
  });
  it('markers, comments and junk lines', () => {
    const list = parseKnownHosts(`# comment\n\n@revoked * ssh-ed25519 ${key}\n@cert-authority *.x ssh-ed25519 ${key}\ngarbage\n`);
    expect(list.map((e) => e.marker)).toEqual(['revoked', 'cert-authority']);
  });
  it('fingerprints in OpenSSH format', () => {
    const blob = Buffer.from(key, 'base64');
    const ssh = execFileSync('ssh-keygen', ['-lf', '-'], { input: `ssh-ed25519 ${key}\n` }).toString().split(' ')[1];
    expect(fingerprint(blob)).toBe(ssh);
  });
});

describe('ssh config', () => {
  const cfg = parseSshConfig(`
IdentityFile ~/.ssh/global
Host bastion-* !bastion-9
  HostName %h.example.net
  User ops
  Port 2200
Host *
  User nobody
  IdentityFile /keys/all
Match host foo
  User never
`);
  it('first value wins, identity files accumulate, patterns and negation', () => {
    expect(lookupSshConfig(cfg, 'bastion-1')).toMatchObject({ hostName: 'bastion-1.example.net', user: 'ops', port: 2200 });
    expect(lookupSshConfig(cfg, 'bastion-1').identityFiles).toEqual([expect.stringMatching(/\/\.ssh\/global$/), '/keys/all']);
    const b9 = lookupSshConfig(cfg, 'bastion-9');
    expect([b9.hostName, b9.user, b9.port]).toEqual([undefined, 'nobody', undefined]);
    expect(lookupSshConfig(cfg, 'foo').user).toBe('nobody');
  });
});
