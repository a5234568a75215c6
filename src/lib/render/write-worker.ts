/**
 * The worker side of BundleWriter (write-pipeline.ts): writes the bundles it is sent, in order,
 * with the same code as writeBundles, and answers each batch (flow control) or with the first error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { writeOne, type Written } from './write.js';
import type { Bundle } from './bundle.js';

const port = parentPort;
if (!port) throw new Error('write-worker runs as a worker thread');
const outDir = (workerData as { outDir: string }).outDir;
const written: Written = new Map();
let failed = false;

port.on('message', (msg: { bundles: Bundle[] }) => {
  if (failed) return;
  try {
    // Buffers arrive as Uint8Arrays: writeFileSync takes either.
    for (const b of msg.bundles) writeOne(outDir, b, written);
    port.postMessage({ written: msg.bundles.length });
  } catch (e) {
    failed = true;
    const err = e as NodeJS.ErrnoException & { hint?: string };
    port.postMessage({ error: { message: err.message, code: err.code, syscall: err.syscall, path: err.path, hint: err.hint } });
  }
});
