import { EdgectlError } from '../errors.js';
import { RE } from '../fleet/values.js';
import { runScript } from '../release/remote.js';
import type { Transport } from '../transport/types.js';
import { parseLines } from './scripts.js';
import { checkedPublicKey, KEYGEN_JS, TUNNEL_KEY_SCRIPT } from './tunnel-key.js';

export interface NodeTunnelKey {
  publicKey: string;
  /** tunnel-key, credential: what was made anew. */
  changed: string[];
  /** A new forwarding credential (a packed node's first bootstrap): its sha256. */
  credentialSha256?: string;
}

/**
 * One exec on the node, after the install script: its tunnel key (made there when missing, asked
 * to rotate, or packed) and, for a packed node, a new credential. Only public halves come back.
 */
export async function nodeTunnelKey(t: Transport, node: string, root: string, runtime: string, rotate: boolean): Promise<NodeTunnelKey> {
  const r = await runScript(t, TUNNEL_KEY_SCRIPT, [root, runtime, rotate ? 'yes' : '', node, KEYGEN_JS], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: making the tunnel key failed (exit ${r.code})`, { detail: (r.stderr || r.stdout).trim().slice(-2000) });
  const out = parseLines(r.stdout);
  const publicKey = checkedPublicKey(out.kv.get('tunnelkey') ?? '', `${node}: what the node answered as its tunnel key`);
  const credentialSha256 = out.kv.get('credential');
  if (credentialSha256 !== undefined && !RE.sha256.test(credentialSha256)) throw new EdgectlError('EDGECTL_BOOTSTRAP', `${node}: the node answered a malformed credential digest`, { detail: credentialSha256.slice(0, 100) });
  return { publicKey, changed: out.changed, credentialSha256 };
}
