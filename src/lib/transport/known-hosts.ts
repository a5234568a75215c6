import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { appendRegularFile, readRegularFile } from '../safe-fs/regular-file.js';

/**
 * OpenSSH known_hosts: `[marker] names keytype base64 [comment]`, where names is a comma list
 * of patterns (`host`, `[host]:port`, `*`/`?` wildcards, `!negation`) or one hashed entry
 * `|1|base64(salt)|base64(hmac-sha1(salt, name))`. `@cert-authority` lines are ignored (we do
 * not do host certificates); `@revoked` keys are refused.
 */
export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority';
  names: string;
  keyType: string;
  key: Buffer;
  line: number;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (parts[0].startsWith('@')) {
      const m = parts.shift()!.slice(1);
      if (m !== 'revoked' && m !== 'cert-authority') return;
      marker = m;
    }
    if (parts.length < 3) return;
    const key = Buffer.from(parts[2], 'base64');
    if (key.length === 0) return;
    out.push({ marker, names: parts[0], keyType: parts[1], key, line: i + 1 });
  });
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.names.startsWith('|1|')) {
    const [, , salt64, hash64] = entry.names.split('|');
    if (!salt64 || !hash64) return false;
    const want = Buffer.from(hash64, 'base64');
    const got = createHmac('sha1', Buffer.from(salt64, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const pat of entry.names.split(',')) {
    const neg = pat.startsWith('!');
    if (globMatch(neg ? pat.slice(1) : pat, name)) {
      if (neg) return false;
      matched = true;
    }
  }
  return matched;
}

export function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp('^' + pattern.toLowerCase().replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.') + '$');
  return re.test(text.toLowerCase());
}

/** Far more than any real known_hosts (100,000 hosts is about 10 MB); a bigger one is refused, not read. */
export const MAX_KNOWN_HOSTS_BYTES = 32 * 1024 * 1024;

/**
 * Reads a known_hosts file; a missing file is an empty one. Only a regular file is read
 * (UnsafeFileError otherwise); `noFollow` for the fleet's, which must not be a link.
 */
export async function readKnownHosts(path: string, o: { noFollow?: boolean } = {}): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(readRegularFile(path, { maxBytes: MAX_KNOWN_HOSTS_BYTES, noFollow: o.noFollow }).toString('utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Appends a line to the fleet's known_hosts, never through a link (the fleet's file is the fleet's to fake). */
export async function appendKnownHost(path: string, name: string, keyLine: string): Promise<void> {
  await appendRegularFile(path, `${name} ${keyLine}\n`, { noFollow: true, mode: 0o644 });
}

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the sha256 of the key blob. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** `ssh-ed25519 AAAA...` from a blob. */
export function keyLine(blob: Buffer): string {
  return `${blobType(blob)} ${blob.toString('base64')}`;
}
