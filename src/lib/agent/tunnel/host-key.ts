import { blobType, fingerprint } from '../../transport/known-hosts.js';

/**
 * The relay's host key as the node checks it: one of the keys pinned in agent.json (the fleet's,
 * shipped in the release), nothing else. There is no first-seen acceptance on the node: an
 * unpinned or changed key is refused every time and reported, until a release pins the new key.
 */
export class PinnedHostKeys {
  private readonly blobs: Buffer[];

  constructor(lines: readonly string[]) {
    this.blobs = lines.map((l) => Buffer.from(l.split(' ')[1] ?? '', 'base64')).filter((b) => b.length > 0);
  }

  get empty(): boolean {
    return this.blobs.length === 0;
  }

  /** ssh2's serverHostKey list: only the types pinned, so the relay shows a key we can check. */
  algorithms(): string[] {
    const out = new Set<string>();
    for (const b of this.blobs) {
      const t = blobType(b);
      if (t === 'ssh-rsa') for (const a of ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']) out.add(a);
      else out.add(t);
    }
    return [...out];
  }

  /** undefined when accepted, else why not (with both fingerprints, for /status and the log). */
  check(relay: string, blob: Buffer): string | undefined {
    if (this.blobs.some((b) => b.equals(blob))) return undefined;
    return `HOST KEY CHANGED for relay ${relay}: it presents ${fingerprint(blob)}, but this node's release pins ${this.blobs.map((b) => fingerprint(b)).join(', ')}; refusing to connect`;
  }
}
