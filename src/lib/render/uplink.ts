import { acceptForwardSchema, type AcceptForward } from '../bundle/agent-json.js';
import { EdgectlError } from '../errors.js';
import type { ResolvedNode } from '../fleet/model.js';
import type { RenderContext } from './context.js';

/**
 * Who forwards uplink data to whom. A node's next hop is the last relay in its `via` (the relay
 * next to it), else the fleet's hub (its core nodes); core nodes forward to nobody. A hop accepts
 * exactly the nodes whose next hop it is and that have a credential hash in the fleet, each with
 * the nodes behind it (whose data it passes on). A node without a credential is in no list: its
 * parent refuses it, never the other way round.
 */
const HUB = '';

interface Tree {
  /** Senders per hop (a relay's name, or HUB), sorted by name. */
  senders: Map<string, AcceptForward[]>;
}

const trees = new WeakMap<RenderContext, Tree>();

/** The hop `node` forwards to: a relay's name, HUB, or undefined for a core node. */
function parentOf(node: ResolvedNode): string | undefined {
  if (node.role === 'core') return undefined;
  return node.via.length > 0 ? node.via[node.via.length - 1] : HUB;
}

function build(ctx: RenderContext): Tree {
  const behind = new Map<string, string[]>();
  for (const n of ctx.nodes) {
    // Up the chain of next hops: n's data passes every relay on it. Validate refuses loops; the
    // step bound keeps a render of an unvalidated model finite all the same.
    let p = parentOf(n);
    for (let steps = 0; p && steps <= ctx.nodes.length; steps++) {
      const relay = ctx.nodeByName.get(p);
      if (!relay) break;
      const list = behind.get(p);
      if (list) list.push(n.name);
      else behind.set(p, [n.name]);
      p = parentOf(relay);
    }
  }
  const senders = new Map<string, AcceptForward[]>();
  for (const n of [...ctx.nodes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = parentOf(n);
    if (p === undefined || !n.credentialSha256) continue;
    const parsed = acceptForwardSchema.safeParse({ node: n.name, sha256: n.credentialSha256, behind: (behind.get(n.name) ?? []).sort() });
    if (!parsed.success) throw new EdgectlError('EDGECTL_RENDER', `node ${n.name}: its credential cannot go into its parent's agent.json: ${parsed.error.issues[0].message}`);
    const list = senders.get(p);
    if (list) list.push(parsed.data);
    else senders.set(p, [parsed.data]);
  }
  return { senders };
}

/** agent.json acceptForward of `node`: the nodes that forward to it. Empty on edges. */
export function acceptForwardFor(ctx: RenderContext, node: ResolvedNode): AcceptForward[] {
  let t = trees.get(ctx);
  if (!t) trees.set(ctx, (t = build(ctx)));
  if (node.role === 'edge') return [];
  return t.senders.get(node.role === 'core' ? HUB : node.name) ?? [];
}
