/** A command's stdout or stderr, kept up to a cap so that a runaway command cannot fill memory. */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;

  constructor(private readonly cap = 64 * 1024 * 1024) {}

  push(c: Buffer): void {
    if (this.size + c.length > this.cap) {
      this.dropped += c.length;
      return;
    }
    this.chunks.push(c);
    this.size += c.length;
  }

  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped ? `${s}\n[edgectl: ${this.dropped} more bytes of output dropped]\n` : s;
  }
}

/** An exec's outcome is decided once: the first of exit, error, timeout or lost connection wins; `cleanup` runs before it. */
export function settleOnce(cleanup: () => void): (fn: () => void) => void {
  let settled = false;
  return (fn) => {
    if (settled) return;
    settled = true;
    cleanup();
    fn();
  };
}
