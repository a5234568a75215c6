import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdgectlError } from '../errors.js';
import { parseSshPublicKey } from '../fleet/ssh-public-key.js';

/**
 * The node's tunnel key (issue 16): an ed25519 key pair made where it is used, its private half
 * 0600 in <root>/secrets/tunnel-key in OpenSSH's format (what ssh2 and ssh-keygen read), its
 * public half recorded in the fleet as spec.tunnelKey. The node needs no ssh-keygen: the key is
 * made by the Node.js that runs the agent, with KEYGEN_JS below (node:crypto only). The same
 * program makes a packed node's first key on the operator's machine (pack.ts).
 */

/**
 * `node -e KEYGEN_JS new FILE COMMENT`: writes a new key to FILE (O_EXCL, 0600) and prints its
 * public line; `node -e KEYGEN_JS pub FILE`: prints the public line of the key in FILE (read from
 * the file's public part, so no .pub file can disagree with the key).
 */
export const KEYGEN_JS = String.raw`
const fs = require('fs'), crypto = require('crypto');
const [mode, file, comment = ''] = process.argv.slice(1);
const str = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
const T = Buffer.from('ssh-ed25519');
const line = (pub) => 'ssh-ed25519 ' + str(Buffer.concat([str(T), str(pub)])).subarray(4).toString('base64');
if (mode === 'new') {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d, 'base64url'), pub = Buffer.from(jwk.x, 'base64url');
  const check = crypto.randomBytes(4);
  let priv = Buffer.concat([check, check, str(T), str(pub), str(Buffer.concat([seed, pub])), str(Buffer.from(comment))]);
  const pad = []; for (let i = 1; (priv.length + pad.length) % 8; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const none = str(Buffer.from('none'));
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), none, none, str(Buffer.alloc(0)), Buffer.from([0, 0, 0, 1]), str(Buffer.concat([str(T), str(pub)])), str(priv)]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  const fd = fs.openSync(file, 'wx', 0o600);
  fs.writeSync(fd, '-----BEGIN OPENSSH PRIVATE KEY-----\n' + b64 + '-----END OPENSSH PRIVATE KEY-----\n');
  fs.fsyncSync(fd); fs.closeSync(fd);
  process.stdout.write(line(pub) + '\n');
} else if (mode === 'pub') {
  const text = fs.readFileSync(file, 'utf8');
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) { process.stderr.write('not an OpenSSH private key\n'); process.exit(3); }
  const b = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  let o = 15; const next = () => { const n = b.readUInt32BE(o); const v = b.subarray(o + 4, o + 4 + n); o += 4 + n; return v; };
  next(); next(); next(); o += 4;
  const blob = next();
  process.stdout.write('ssh-ed25519 ' + blob.toString('base64') + '\n');
} else { process.stderr.write('usage: new FILE COMMENT | pub FILE\n'); process.exit(2); }
`;

/** A new ed25519 key pair here (a packed node's first key): OpenSSH private key text and public line. */
export function generateTunnelKey(comment: string): { privateKey: Buffer; publicKey: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-tk-'));
  try {
    const file = join(dir, 'key');
    const pub = execFileSync(process.execPath, ['-e', KEYGEN_JS, 'new', file, comment], { encoding: 'utf8' }).trim();
    return { privateKey: readFileSync(file), publicKey: checkedPublicKey(pub, 'the generated key') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the node answers is hostile too: only a well-formed ed25519 public key goes into the fleet. */
export function checkedPublicKey(line: string, what: string): string {
  const k = parseSshPublicKey(line);
  if (typeof k === 'string' || !line.startsWith('ssh-ed25519 ')) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${what} is not an ssh-ed25519 public key${typeof k === 'string' ? `: ${k}` : ''}`, { detail: line.slice(0, 200) });
  return k.line.split(' ').slice(0, 2).join(' ');
}

/**
 * On the node, after the install script (the runtime is in place then): makes <root>/secrets/tunnel-key
 * when there is none, when a rotation is asked ($3 = yes), or when the node was installed from a pack
 * (<root>/secrets/packed: what the archive held is to stop working at the first bootstrap). A packed
 * node's forwarding credential is made anew too, and the marker removed last. The new key is made
 * under a temporary name and renamed over the old (the agent reads the key at every attempt, so a
 * half-written key is never read). Prints `tunnelkey <public line>`, and `credential <sha256>` for
 * a new credential, `changed …` for what changed.
 */
export const TUNNEL_KEY_SCRIPT = String.raw`set -u
r=$1 rt=$2 rotate=$3 comment=$4 js=$5
s="$r/secrets"
fail() { echo "$*" >&2; exit 3; }
umask 077
mkdir -p "$s" && chmod 700 "$s" || fail "cannot create $s"
packed=""; [ -e "$s/packed" ] && packed=yes
if [ -n "$rotate$packed" ] || [ ! -s "$s/tunnel-key" ]; then
  rm -f "$s/.tunnel-key.new"
  "$rt" -e "$js" new "$s/.tunnel-key.new" "$comment" > /dev/null || fail "cannot make a tunnel key with $rt"
  mv "$s/.tunnel-key.new" "$s/tunnel-key" || fail "cannot move the tunnel key into place"
  echo "changed tunnel-key"
fi
chmod 600 "$s/tunnel-key"
if [ -n "$packed" ]; then
  t=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  [ ${"$"}{#t} -eq 64 ] || fail "cannot read 32 random bytes from /dev/urandom"
  printf '%s' "$t" > "$s/.agent-token.tmp" && mv "$s/.agent-token.tmp" "$s/agent-token" || fail "cannot write $s/agent-token"
  chmod 600 "$s/agent-token"
  printf 'credential %s\n' "$(sha256sum < "$s/agent-token" | cut -d ' ' -f 1)"
  echo "changed credential"
fi
sync
rm -f "$s/packed" && sync
p=$("$rt" -e "$js" pub "$s/tunnel-key") || fail "cannot read the tunnel key's public half"
printf 'tunnelkey %s\n' "$p"
`;
