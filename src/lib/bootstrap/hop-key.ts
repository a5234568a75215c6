import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { EdgectlError } from '../errors.js';
import { runScript } from '../release/remote.js';
import type { Transport } from '../transport/types.js';
import { parseLines } from './scripts.js';

/**
 * A relay's or core node's hop key (issue 17): an ECDSA P-256 key made on the node by the
 * Node.js that runs the agent (node:crypto only), 0600 in <root>/secrets/hop-key.pem (PKCS#8,
 * what the agent's TLS listener reads: render points forwardTls.keyFile there when the fleet
 * holds no key for the node). Only its public half comes back, with a signature over a nonce
 * edgectl sent, so the key the fleet CA signs is one the node holds.
 */

/**
 * `node -e HOP_KEYGEN_JS FILE CONTEXT`: makes FILE when it is missing or empty (a temporary name
 * next to it, O_EXCL, 0600, fsynced, renamed), then prints `hopkey <SPKI DER, base64>`, `pop
 * <ECDSA-SHA256 signature of CONTEXT, base64>` and `changed hop-key` when it made the key.
 */
export const HOP_KEYGEN_JS = String.raw`
const fs = require('fs'), crypto = require('crypto');
const [file, context] = process.argv.slice(1);
let made = false;
let st; try { st = fs.statSync(file); } catch { st = undefined; }
if (!st || st.size === 0) {
  const tmp = file + '.new';
  try { fs.unlinkSync(tmp); } catch {}
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const fd = fs.openSync(tmp, 'wx', 0o600);
  fs.writeSync(fd, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  fs.fsyncSync(fd); fs.closeSync(fd);
  fs.renameSync(tmp, file);
  made = true;
}
fs.chmodSync(file, 0o600);
const key = crypto.createPrivateKey(fs.readFileSync(file));
if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails.namedCurve !== 'prime256v1') { process.stderr.write(file + ' is not an ECDSA P-256 key\n'); process.exit(3); }
const spki = crypto.createPublicKey(key).export({ format: 'der', type: 'spki' });
process.stdout.write('hopkey ' + spki.toString('base64') + '\npop ' + crypto.sign('sha256', Buffer.from(context), key).toString('base64') + '\n' + (made ? 'changed hop-key\n' : ''));
`;

export const HOP_KEY_SCRIPT = String.raw`set -u
r=$1 rt=$2 js=$3 ctx=$4
s="$r/secrets"
umask 077
mkdir -p "$s" && chmod 700 "$s" || { echo "cannot create $s" >&2; exit 3; }
"$rt" -e "$js" "$s/hop-key.pem" "$ctx" || { echo "cannot make or read $s/hop-key.pem with $rt" >&2; exit 3; }
sync
`;

export interface NodeHopKey {
  /** The key's public half, SPKI DER (P-256, possession checked). */
  spki: Buffer;
  /** hop-key when it was made by this call. */
  changed: string[];
}

/** What signs the nonce: bound to the node's name, so an answer for one node is no answer for another. */
export const popContext = (node: string, nonce: string) => `edgectl hop key ${node} ${nonce}`;

/** One exec on the node (after the install, its runtime in place): the hop key, made when missing. */
export async function nodeHopKey(t: Transport, node: string, root: string, runtime: string): Promise<NodeHopKey> {
  const context = popContext(node, randomBytes(16).toString('hex'));
  const r = await runScript(t, HOP_KEY_SCRIPT, [root, runtime, HOP_KEYGEN_JS, context], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: making the hop key failed (exit ${r.code})`, { detail: (r.stderr || r.stdout).trim().slice(-2000) });
  const out = parseLines(r.stdout);
  return { spki: checkedHopKey(node, out.kv.get('hopkey') ?? '', out.kv.get('pop') ?? '', context), changed: out.changed };
}

/** What the node answers is hostile too: a P-256 public key whose signature over our context verifies. */
export function checkedHopKey(node: string, spkiB64: string, popB64: string, context: string): Buffer {
  const bad = (why: string) => new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: what the node answered as its hop key ${why}`, { detail: spkiB64.slice(0, 200) });
  if (!/^[A-Za-z0-9+/]{40,400}={0,2}$/.test(spkiB64) || !/^[A-Za-z0-9+/]{40,200}={0,2}$/.test(popB64)) throw bad('is not base64');
  const spki = Buffer.from(spkiB64, 'base64');
  let pub;
  try {
    pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw bad('is not a public key');
  }
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw bad('is not an ECDSA P-256 key');
  if (!verify('sha256', Buffer.from(context), pub, Buffer.from(popB64, 'base64'))) throw bad('comes with a signature that does not verify (the node does not hold that key)');
  return spki;
}
