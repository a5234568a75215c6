import { parentPort, workerData } from 'node:worker_threads';
import { checkFile } from './validate.js';
import type { PlainCheck } from './validate-parallel.js';

/** Stage one of validation for a share of the files, in a worker thread (see validate-parallel.ts). */
const files = workerData.files as { path: string; bytes: Uint8Array }[];
const out: PlainCheck[] = files.map((f) => {
  const c = checkFile({ path: f.path, bytes: Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength) });
  return {
    path: c.path,
    text: c.text,
    problems: c.problems,
    docs: c.docs.map(({ doc, resource }) => ({ index: doc.index, value: doc.value, resource: resource && { kind: resource.kind, name: resource.name, labels: resource.labels, spec: resource.spec } })),
  };
});
parentPort!.postMessage(out);
