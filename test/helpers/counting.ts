import type { Transport } from '../../src/lib/transport/types.js';

/**
 * A transport that logs every call it passes on, per node, into `calls`: what the round-trip
 * tests count. `exec` is logged by its program, or with `scripts`, a script's first line.
 */
export function countingTransport(t: Transport, calls: Map<string, string[]>, o: { scripts?: boolean } = {}): Transport {
  const log = (what: string) => calls.set(t.node, [...(calls.get(t.node) ?? []), what]);
  return {
    node: t.node, root: t.root,
    get turns() {
      return t.turns;
    },
    get fileTransfer() {
      return t.fileTransfer;
    },
    exec: (a, x) => (log(`exec ${o.scripts && (a[0] === 'sh' || a[0] === 'bash') ? a[2].trim().split('\n')[0] : a[0]}`), t.exec(a, x)),
    readFile: (p) => (log(`readFile ${p}`), t.readFile(p)),
    stat: (p) => (log(`stat ${p}`), t.stat(p)),
    http: (r) => (log(`http ${r.path}`), t.http(r)),
    writeFiles: (f) => (log(`writeFiles ${f.length}`), t.writeFiles(f)),
    close: () => t.close(),
  };
}
